//! Not written yet: placeholder so that the registry compiles.

use super::Codec;

pub(super) static CODECS: &[&dyn Codec] = &[];
