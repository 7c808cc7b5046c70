//! Byte-level access to extension payloads.
//!
//! [`Payload`] writes a zero-filled kernel struct field by field; [`Reader`]
//! reads one back with bounds checks, so a short or corrupt payload from the
//! kernel gives an error, never a panic. Offsets come from `offset_of!` on the
//! bindgen structs (see `crate::sys::bindings`), never from bare numbers.

/// A zero-filled payload being written.
#[derive(Debug, Clone)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// A payload of `size` zero bytes (the kernel expects padding zeroed).
    pub fn new(size: usize) -> Payload {
        Payload(vec![0; size])
    }

    /// A payload sized for the C struct `T`.
    pub fn of<T>() -> Payload {
        Payload::new(std::mem::size_of::<T>())
    }

    /// Writes one byte.
    pub fn u8(&mut self, off: usize, v: u8) -> &mut Self {
        self.0[off] = v;
        self
    }

    /// Writes a host-order u16.
    pub fn u16(&mut self, off: usize, v: u16) -> &mut Self {
        self.0[off..off + 2].copy_from_slice(&v.to_ne_bytes());
        self
    }

    /// Writes a host-order u32.
    pub fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    /// Writes a host-order u64.
    pub fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    /// Writes a network-order u16.
    pub fn be16(&mut self, off: usize, v: u16) -> &mut Self {
        self.0[off..off + 2].copy_from_slice(&v.to_be_bytes());
        self
    }

    /// Writes a network-order u32.
    pub fn be32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_be_bytes());
        self
    }

    /// Copies bytes in.
    pub fn bytes(&mut self, off: usize, v: &[u8]) -> &mut Self {
        self.0[off..off + v.len()].copy_from_slice(v);
        self
    }

    /// The finished payload.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }

    /// The payload so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Bounds-checked reads from a payload.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a>(&'a [u8]);

fn short(off: usize, len: usize, have: usize) -> String {
    format!(
        "payload too short: need {} bytes at offset {off}, have {have}",
        len
    )
}

impl<'a> Reader<'a> {
    /// Wraps a payload; `need` is the struct size the caller will read.
    pub fn new(data: &'a [u8], need: usize) -> Result<Reader<'a>, String> {
        if data.len() < need {
            return Err(short(0, need, data.len()));
        }
        Ok(Reader(data))
    }

    /// Reads `len` bytes.
    pub fn bytes(&self, off: usize, len: usize) -> Result<&'a [u8], String> {
        self.0
            .get(off..off + len)
            .ok_or_else(|| short(off, len, self.0.len()))
    }

    fn arr<const N: usize>(&self, off: usize) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(off, N)?);
        Ok(a)
    }

    /// Reads one byte.
    pub fn u8(&self, off: usize) -> Result<u8, String> {
        Ok(self.arr::<1>(off)?[0])
    }

    /// Reads a host-order u16.
    pub fn u16(&self, off: usize) -> Result<u16, String> {
        Ok(u16::from_ne_bytes(self.arr(off)?))
    }

    /// Reads a host-order u32.
    pub fn u32(&self, off: usize) -> Result<u32, String> {
        Ok(u32::from_ne_bytes(self.arr(off)?))
    }

    /// Reads a host-order u64.
    pub fn u64(&self, off: usize) -> Result<u64, String> {
        Ok(u64::from_ne_bytes(self.arr(off)?))
    }

    /// Reads a network-order u16.
    pub fn be16(&self, off: usize) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.arr(off)?))
    }

    /// Reads a network-order u32.
    pub fn be32(&self, off: usize) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.arr(off)?))
    }

    /// Reads a NUL-terminated string from a fixed-size field.
    pub fn cstr(&self, off: usize, len: usize) -> Result<&'a [u8], String> {
        let b = self.bytes(off, len)?;
        Ok(&b[..b.iter().position(|&c| c == 0).unwrap_or(len)])
    }
}
