//! The kernel's table blob: [`encode_table`] lays a [`Table`](crate::rules::Table)
//! out as libiptc does for `IPT_SO_SET_REPLACE`; [`decode_table`] reads what
//! `IPT_SO_GET_ENTRIES` returns back into the model.

mod decode;
pub(crate) mod encode;
pub mod layout;
pub(crate) mod pack;

pub use decode::{decode_policies, decode_table};
pub use encode::{encode_table, encode_table_reusing, EncodedTable};
pub use pack::KeptTable;
