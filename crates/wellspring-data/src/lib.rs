//! wellspring-data (in progress)
