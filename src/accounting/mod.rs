//! What requests cost and the record they leave: integer money, UTC periods, the price
//! table, and the ledger writer (a bounded queue drained in batches, off the request path).

pub mod ledger;
pub mod money;
pub mod period;
pub mod price;
pub mod redact;

pub use money::Money;
pub use price::{Price, PriceOverride, PriceTable, UnknownPrice};
