//! When a JWT may be used: its time claims (`exp`, `nbf`, `iat`) as RFC 7519 means them, with a
//! leeway for clock skew, and a maximum lifetime.

use super::error::JwtError;

/// The time rules of a key set, in seconds.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimeRules {
    /// How far the issuer's clock and this one may disagree.
    pub(super) leeway: u64,
    /// How far ahead of now a JWT's `exp` may lie.
    pub(super) max_lifetime: u64,
}

/// A JWT's time claims, in seconds since the epoch: `exp` is required, `nbf` and `iat` are not.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimeClaims {
    pub(super) exp: u64,
    pub(super) nbf: Option<u64>,
    pub(super) iat: Option<u64>,
}

/// The seconds since the epoch at which a JWT is accepted, both ends included.
///
/// Every time rule bounds now from one side: `exp` plus the leeway from above; `nbf` and `iat`
/// less the leeway, and `exp` less the maximum lifetime, from below. So one interval holds them
/// all, and a cached JWT is checked against them all with two comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Validity {
    from: u64,
    until: u64,
}

impl Validity {
    /// The interval of a JWT with these claims under these rules, if it holds `now`; else the
    /// first rule that refuses the JWT at `now`.
    pub(super) fn at(claims: TimeClaims, rules: TimeRules, now: u64) -> Result<Self, JwtError> {
        let before = |claim: Option<u64>| claim.map_or(0, |at| at.saturating_sub(rules.leeway));
        let (not_before, issued) = (before(claims.nbf), before(claims.iat));
        let within_lifetime = claims.exp.saturating_sub(rules.max_lifetime);
        let validity = Self {
            from: not_before.max(issued).max(within_lifetime),
            until: claims.exp.saturating_add(rules.leeway),
        };
        if validity.contains(now) {
            Ok(validity)
        } else if now > validity.until {
            Err(JwtError::Expired)
        } else if now < not_before {
            Err(JwtError::NotYetValid)
        } else if now < issued {
            Err(JwtError::IssuedInTheFuture)
        } else {
            Err(JwtError::ExpiresTooLate)
        }
    }

    /// Whether a JWT is accepted at `now`: on every cache hit, so two comparisons and no more.
    pub(super) fn contains(self, now: u64) -> bool {
        self.from <= now && now <= self.until
    }

    /// An interval as it is, for tests of what holds one.
    #[cfg(test)]
    pub(super) fn between(from: u64, until: u64) -> Self {
        Self { from, until }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: TimeRules = TimeRules {
        leeway: 5,
        max_lifetime: 3605,
    };
    const NOW: u64 = 1_750_000_000;

    fn at(exp: u64, nbf: Option<u64>, iat: Option<u64>) -> Result<Validity, JwtError> {
        Validity::at(TimeClaims { exp, nbf, iat }, RULES, NOW)
    }

    #[test]
    fn each_rule_bounds_now_within_the_leeway() {
        assert_eq!(
            at(NOW - 5, None, None),
            Ok(Validity::between(NOW - 3610, NOW))
        );
        assert_eq!(at(NOW - 6, None, None), Err(JwtError::Expired));
        assert!(at(NOW + 60, Some(NOW + 5), None).is_ok());
        assert_eq!(
            at(NOW + 60, Some(NOW + 6), None),
            Err(JwtError::NotYetValid)
        );
        assert!(at(NOW + 60, None, Some(NOW + 5)).is_ok());
        assert_eq!(
            at(NOW + 60, None, Some(NOW + 6)),
            Err(JwtError::IssuedInTheFuture)
        );
        assert!(at(NOW + 3605, None, None).is_ok());
        assert_eq!(at(NOW + 3606, None, None), Err(JwtError::ExpiresTooLate));
    }

    #[test]
    fn the_interval_is_what_every_rule_allows_together() {
        let validity = at(NOW + 3000, Some(NOW - 10), Some(NOW - 100)).unwrap();
        assert_eq!(validity, Validity::between(NOW - 15, NOW + 3005));
        let validity = at(NOW + 3600, Some(NOW - 10), Some(NOW + 2)).unwrap();
        assert_eq!(validity, Validity::between(NOW - 3, NOW + 3605));
        for inside in [NOW - 3, NOW, NOW + 3605] {
            assert!(validity.contains(inside), "{inside}");
        }
        assert!(!validity.contains(NOW - 4) && !validity.contains(NOW + 3606));
    }

    #[test]
    fn extreme_claims_saturate_and_are_refused() {
        assert_eq!(at(u64::MAX, None, None), Err(JwtError::ExpiresTooLate));
        assert_eq!(at(NOW, Some(u64::MAX), None), Err(JwtError::NotYetValid));
        assert_eq!(
            at(NOW, None, Some(u64::MAX)),
            Err(JwtError::IssuedInTheFuture)
        );
        assert_eq!(at(0, Some(0), Some(0)), Err(JwtError::Expired));
        // Before `nbf` and after `exp` at once: no moment is inside.
        assert_eq!(
            at(NOW + 10, Some(NOW + 30), None),
            Err(JwtError::NotYetValid)
        );
        let never = Validity::between(NOW + 25, NOW + 15);
        assert!((NOW..NOW + 40).all(|now| !never.contains(now)));
    }
}
