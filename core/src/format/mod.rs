//! Writing events: the JSON format (structured, batch, JSON Lines) and binary mode (headers + body).

pub mod binary;
pub mod json;
