//! The web platform (issue 6): the firm search index; routes, pages and the API follow.

pub mod search;
