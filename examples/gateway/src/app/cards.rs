//! A small in-memory resource, `/api/v1/cards`, so that read and write roles can be seen at work.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{delete, get},
};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::principal::Principal;

/// The demo keeps memory bounded whatever clients send.
const MAX_CARDS_PER_ORGANIZATION: usize = 1000;
const MAX_TITLE_CHARS: usize = 200;

/// Cards by organization.
#[derive(Clone, Default)]
pub struct Cards(Arc<Mutex<HashMap<String, Vec<Card>>>>);

#[derive(Clone, Serialize)]
pub struct Card {
    id: Uuid,
    title: String,
    created_by: String,
}

#[derive(Deserialize)]
pub struct NewCard {
    title: String,
}

/// `GET` and `POST /api/v1/cards`, `DELETE /api/v1/cards/{id}`.
pub fn routes() -> Router {
    Router::new()
        .route("/api/v1/cards", get(list).post(create))
        .route("/api/v1/cards/{id}", delete(remove))
        .with_state(Cards::default())
}

impl Cards {
    fn with<T>(&self, organization: &str, f: impl FnOnce(&mut Vec<Card>) -> T) -> T {
        let mut cards = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(cards.entry(organization.to_owned()).or_default())
    }
}

async fn list(State(cards): State<Cards>, who: Principal) -> Json<Vec<Card>> {
    Json(cards.with(who.organization(), |cards| cards.clone()))
}

async fn create(
    State(cards): State<Cards>,
    who: Principal,
    Json(new): Json<NewCard>,
) -> Result<(StatusCode, Json<Card>), (StatusCode, Json<Value>)> {
    if new.title.trim().is_empty() || new.title.chars().count() > MAX_TITLE_CHARS {
        let why = format!("`title` must hold 1 to {MAX_TITLE_CHARS} characters");
        return Err(refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card",
            why,
        ));
    }
    let card = Card {
        id: Uuid::new_v4(),
        title: new.title,
        created_by: who.user().id.clone(),
    };
    let added = cards.with(who.organization(), |cards| {
        let room = cards.len() < MAX_CARDS_PER_ORGANIZATION;
        if room {
            cards.push(card.clone());
        }
        room
    });
    if !added {
        let why = format!("an organization holds at most {MAX_CARDS_PER_ORGANIZATION} cards");
        return Err(refusal(StatusCode::CONFLICT, "too_many_cards", why));
    }
    Ok((StatusCode::CREATED, Json(card)))
}

fn refusal(status: StatusCode, error: &str, description: String) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
}

async fn remove(State(cards): State<Cards>, who: Principal, Path(id): Path<Uuid>) -> StatusCode {
    let removed = cards.with(who.organization(), |cards| {
        let before = cards.len();
        cards.retain(|card| card.id != id);
        cards.len() < before
    });
    if removed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
