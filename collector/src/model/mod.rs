//! The data model: the rows Tern stores ([`rows`]) and how spans become them ([`derive`]).

pub mod derive;
pub mod rows;
