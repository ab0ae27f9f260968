//! wellspring-models (in progress)
