//! Room domain.
