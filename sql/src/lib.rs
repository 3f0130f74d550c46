//! sluice-sql: parse (sqlparser with a Proton dialect wrapper) -> bind -> plan -> vectorised
//! execution over Arrow, with bounded (historical) and unbounded (streaming) operators.
//!
//! Status: skeleton. The parser, binder and executor arrive with issue C. This crate knows nothing
//! of files: the engine implements the catalog, scan and subscribe traits it will declare.
