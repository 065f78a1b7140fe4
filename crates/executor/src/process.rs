//! Process backend (being written).
