//! [`ClientSlots`]: how many connections each client address has open, so that one address
//! cannot take every connection the gateway serves.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

/// The connections open per client address, each at most `per_client`.
#[derive(Debug)]
pub(crate) struct ClientSlots {
    per_client: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection of a client, counted until it is dropped.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl ClientSlots {
    /// At most `per_client` connections for each address.
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            open: Mutex::default(),
        })
    }

    /// A slot for one more connection of `client`, unless it already has `per_client` open.
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Looked at before counting, so a refused address leaves no entry behind.
        if open.get(&client).copied().unwrap_or(0) >= self.per_client {
            return None;
        }
        *open.entry(client).or_insert(0) += 1;
        Some(ClientSlot {
            slots: Arc::clone(self),
            client,
        })
    }

    /// How many connections `client` has open.
    #[cfg(test)]
    fn open(&self, client: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            // An address with nothing open is forgotten, so the map holds only clients
            // connected now.
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_share_and_a_closed_connection_frees_its_slot() {
        let slots = ClientSlots::new(2);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let first = slots.take(a).unwrap();
        let _second = slots.take(a).unwrap();
        assert!(slots.take(a).is_none(), "a third for the same address");
        assert!(slots.take(b).is_some(), "another address is not held back");
        drop(first);
        assert_eq!(slots.open(a), 1);
        assert!(slots.take(a).is_some(), "the freed slot is taken again");
    }

    #[test]
    fn an_address_with_nothing_open_is_forgotten() {
        let slots = ClientSlots::new(1);
        let a = IpAddr::from([192, 0, 2, 1]);
        drop(slots.take(a).unwrap());
        assert_eq!(slots.open(a), 0);
        assert!(slots.open.lock().unwrap().is_empty());
        let none = ClientSlots::new(0);
        assert!(none.take(a).is_none());
        assert!(
            none.open.lock().unwrap().is_empty(),
            "a refusal counts nothing"
        );
    }
}
