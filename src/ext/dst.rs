//! `-m dst` (ip6t_dst, IPv6 only): the Destination Options header: its
//! length and a list of options (`TYPE[:LEN]`). The kernel struct and the
//! codec are hbh's ([`OptsMatch`]); only the names differ.

use super::hbh::{OptsMatch, O_LEN, O_OPTS};
use super::recent::{XtOpt, XTOPT_INVERT};
use super::{Arg, Codec, OptSpec};

pub(super) static CODECS: &[&dyn Codec] = &[&DST];

static DST_TABLE: [XtOpt; 2] = [
    XtOpt::new("dst-len", O_LEN, Arg::One, XTOPT_INVERT),
    XtOpt::new("dst-opts", O_OPTS, Arg::One, 0),
];
static DST_SPECS: [OptSpec; 2] = XtOpt::specs(&DST_TABLE);

static DST: OptsMatch = OptsMatch {
    name: "dst",
    table: &DST_TABLE,
    specs: &DST_SPECS,
    pad0: "PAD0 hasn't got length",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::hbh::opts_tests;

    #[test]
    fn kernel_bytes_round_trip() {
        opts_tests::round_trips(&DST);
    }

    #[test]
    fn bad_values_are_refused() {
        opts_tests::refusals(&DST);
    }
}
