//! wellspring-report (in progress)
