//! Integration tests of wellspring-report: cache integrity, report files, plots.

mod cache;
mod plots;
mod report;
