#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iptables_atomic::fuzzing::direct_input(data);
});
