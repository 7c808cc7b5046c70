//! `-m l2tp`: deliberately no codec.
//!
//! The kernel has an l2tp match (xt_l2tp), but iptables 1.8.9 ships no
//! extension for it (there is no libxt_l2tp): iptables-legacy-restore
//! refuses `-m l2tp` with "Couldn't load match `l2tp'", and
//! iptables-legacy-save stops on a table that holds one ("Can't find
//! library for match `l2tp'"). With no codec, this crate does the same, so
//! there is no encoding or save text to invent without a reference.

use super::Codec;

pub(super) static CODECS: &[&dyn Codec] = &[];
