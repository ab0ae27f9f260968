//! wellspring facade (in progress)
