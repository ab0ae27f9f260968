//! Minimal `.npy` (NumPy format version 1.0) reader and writer for `f32`, `f64`
//! and `i64` arrays in C order, little-endian, the dtypes wellspring exchanges
//! with Python tools. Writes are atomic (temporary file, then rename).

use std::io::Write;
use std::path::Path;

use crate::error::{CoreError, Result};

/// Element types that can be stored in a `.npy` file by this module.
pub trait NpyElement: Copy + Sized {
    /// NumPy dtype descriptor, e.g. `<f4`.
    const DESCR: &'static str;
    /// Size in bytes.
    const SIZE: usize;
    /// Little-endian bytes.
    fn write_le(self, out: &mut Vec<u8>);
    /// From little-endian bytes (`SIZE` long).
    fn read_le(b: &[u8]) -> Self;
}

macro_rules! npy_elem {
    ($t:ty, $d:expr) => {
        impl NpyElement for $t {
            const DESCR: &'static str = $d;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("slice has SIZE bytes"))
            }
        }
    };
}
npy_elem!(f32, "<f4");
npy_elem!(f64, "<f8");
npy_elem!(i64, "<i8");
npy_elem!(u8, "|u1");

/// Encodes an array as `.npy` bytes.
pub fn encode<T: NpyElement>(shape: &[usize], data: &[T]) -> Vec<u8> {
    let header = header::<T>(shape, false);
    let mut out = Vec::with_capacity(header.len() + data.len() * T::SIZE);
    out.extend_from_slice(&header);
    for v in data {
        v.write_le(&mut out);
    }
    out
}

/// The `.npy` preamble and header (padded to 64 bytes) of a `T` array of
/// `shape`, in C order or, with `fortran`, column-major order.
pub fn header<T: NpyElement>(shape: &[usize], fortran: bool) -> Vec<u8> {
    let shape_str = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}",
        T::DESCR,
        if fortran { "True" } else { "False" },
        shape_str
    );
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// A parsed `.npy` header.
struct Header {
    shape: Vec<usize>,
    fortran: bool,
    /// Offset of the first data byte.
    data_start: usize,
    /// Bytes of data the shape needs.
    data_len: usize,
}

/// Parses the header at the start of `bytes` (which may hold only the
/// header) for element type `T`; `path` names the file in errors.
fn parse_header<T: NpyElement>(path: &Path, bytes: &[u8]) -> Result<Header> {
    let bad = |reason: String| CoreError::Npy {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic string".into()));
    }
    let major = bytes[6];
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    if bytes.len() < hstart + hlen {
        return Err(bad("truncated header".into()));
    }
    let header = std::str::from_utf8(&bytes[hstart..hstart + hlen])
        .map_err(|_| bad("header is not UTF-8".into()))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("header has no 'descr'".into()))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let expected = T::DESCR;
    let compatible =
        descr == expected || (expected.starts_with('<') && descr == format!("={}", &expected[1..]));
    if !compatible {
        return Err(bad(format!("dtype {descr}, expected {expected}")));
    }
    let fortran = match dict_value(header, "fortran_order").map(str::trim) {
        Some("False") => false,
        Some("True") => true,
        Some(v) => return Err(bad(format!("bad fortran_order {v:?}"))),
        None => return Err(bad("header has no 'fortran_order'".into())),
    };
    let shape_s = dict_value(header, "shape").ok_or_else(|| bad("header has no 'shape'".into()))?;
    let shape: Vec<usize> = shape_s
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("bad shape entry {s:?}")))
        })
        .collect::<Result<_>>()?;
    let data_len = byte_len::<T>(&shape).ok_or_else(|| {
        bad(format!(
            "shape {shape:?} is too large ({} bytes per value overflow usize)",
            T::SIZE
        ))
    })?;
    if fortran && shape.len() > 2 {
        return Err(bad(format!(
            "Fortran-ordered arrays of {} dimensions are not supported",
            shape.len()
        )));
    }
    Ok(Header {
        shape,
        fortran,
        data_start: hstart + hlen,
        data_len,
    })
}

/// The C-order values of a parsed array (a 2-D column-major one, what a
/// column-block stream writes, is transposed).
fn to_c_order<T: NpyElement>(h: &Header, data: Vec<T>) -> Vec<T> {
    match (h.fortran, h.shape.as_slice()) {
        (true, &[rows, cols]) => {
            let mut c = Vec::with_capacity(data.len());
            for i in 0..rows {
                c.extend((0..cols).map(|j| data[j * rows + i]));
            }
            c
        }
        _ => data,
    }
}

fn size_error(path: &Path, h: &Header, got: u64) -> CoreError {
    CoreError::Npy {
        path: path.to_path_buf(),
        reason: format!(
            "shape {:?} needs {} bytes of data, file has {got}",
            h.shape, h.data_len
        ),
    }
}

/// Decodes `.npy` bytes; `path` is only used to name the file in errors.
pub fn decode<T: NpyElement>(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<T>)> {
    let h = parse_header::<T>(path, bytes)?;
    let body = &bytes[h.data_start..];
    if body.len() != h.data_len {
        return Err(size_error(path, &h, body.len() as u64));
    }
    let data: Vec<T> = body.chunks_exact(T::SIZE).map(T::read_le).collect();
    let data = to_c_order(&h, data);
    Ok((h.shape, data))
}

/// Number of values of `shape`, `None` on overflow.
pub fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s))
}

/// Bytes of data of a `T` array of `shape`, `None` on overflow.
fn byte_len<T: NpyElement>(shape: &[usize]) -> Option<usize> {
    checked_len(shape)?.checked_mul(T::SIZE)
}

/// Value text of `key` in a Python dict literal header (good enough for npy headers).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let start = header.find(&pat)? + pat.len();
    let rest = &header[start..];
    let rest_trim = rest.trim_start();
    let offset = rest.len() - rest_trim.len();
    let end = if rest_trim.starts_with('(') {
        rest_trim.find(')')? + 1
    } else {
        rest_trim
            .find(',')
            .unwrap_or_else(|| rest_trim.find('}').unwrap_or(rest_trim.len()))
    };
    Some(&rest[offset..offset + end])
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed and synced, then renamed over `path`. A crash leaves either the old
/// file or the new one, never a truncated one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |f| f.write_all(bytes))
}

/// Like [`atomic_write`], with the content produced by `fill` into a buffered
/// writer on the temporary file, so large arrays never need a byte copy in
/// memory.
pub fn atomic_write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process *and* per call, so two threads writing the same path
    // never share a temporary file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        fill(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CoreError::io(path, e)
    })
}

/// Writes an `f32` array as `.npy`, atomically.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write(path, shape, data)
}

/// Writes any supported array as `.npy`, atomically.
pub fn write<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    if checked_len(shape) != Some(data.len()) {
        return Err(CoreError::shape(
            format!("array written to {}", path.display()),
            format!("the number of values of shape {shape:?}"),
            data.len(),
        ));
    }
    atomic_write_with(path, |w| {
        w.write_all(&header::<T>(shape, false))?;
        let mut buf = Vec::with_capacity(T::SIZE * 65536);
        for chunk in data.chunks(65536) {
            buf.clear();
            chunk.iter().for_each(|v| v.write_le(&mut buf));
            w.write_all(&buf)?;
        }
        Ok(())
    })
}

/// Reads an `f32` `.npy` file: `(shape, data)`.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    read(path)
}

/// Reads a `.npy` file of element type `T`, decoding the data as it is read
/// (no second in-memory copy of the file's bytes).
pub fn read<T: NpyElement>(path: &Path) -> Result<(Vec<usize>, Vec<T>)> {
    use std::io::Read;
    let io = |e| CoreError::io(path, e);
    let mut f = std::fs::File::open(path).map_err(io)?;
    let file_len = f.metadata().map_err(io)?.len();
    // The header: its length field, then the rest of it.
    let mut head = vec![0u8; 12.min(file_len as usize)];
    f.read_exact(&mut head).map_err(io)?;
    let hlen = match head.get(6) {
        Some(1) if head.len() >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as usize,
        Some(2 | 3) if head.len() >= 12 => {
            12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize
        }
        _ => head.len(),
    };
    if hlen > head.len() {
        let have = head.len();
        head.resize(hlen.min(file_len as usize), 0);
        f.read_exact(&mut head[have..]).map_err(io)?;
    }
    let h = parse_header::<T>(path, &head)?;
    let body_len = file_len.saturating_sub(h.data_start as u64);
    if body_len != h.data_len as u64 {
        return Err(size_error(path, &h, body_len));
    }
    // `head` may hold the first data bytes (a version-1 header is 10 long).
    let mut data = Vec::with_capacity(h.data_len / T::SIZE);
    let mut pending: Vec<u8> = head[h.data_start.min(head.len())..].to_vec();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let whole = pending.len() - pending.len() % T::SIZE;
        data.extend(pending[..whole].chunks_exact(T::SIZE).map(T::read_le));
        pending.drain(..whole);
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
    }
    if data.len() * T::SIZE != h.data_len {
        return Err(size_error(path, &h, (data.len() * T::SIZE) as u64));
    }
    let data = to_c_order(&h, data);
    Ok((h.shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_parses() {
        let b = encode(&[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let (s, d) = decode::<f32>(Path::new("x"), &b).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(d[5], 6.0);
        let b1 = encode(&[4], &[1i64, 2, 3, 4]);
        assert_eq!(decode::<i64>(Path::new("x"), &b1).unwrap().0, vec![4]);
    }

    #[test]
    fn streamed_reads_match_decode_and_name_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let v: Vec<f32> = (0..300_000).map(|i| i as f32 * 0.5).collect();
        write(&p, &[1000, 300], &v).unwrap();
        let (shape, back) = read::<f32>(&p).unwrap();
        assert_eq!(shape, vec![1000, 300]);
        assert!(back == v);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&p, &bytes).unwrap();
        let e = read::<f32>(&p).unwrap_err().to_string();
        assert!(
            e.contains("a.npy") && e.contains("needs 1200000 bytes"),
            "{e}"
        );
        for junk in [&b""[..], b"\x93NUMPY", b"\x93NUMPY\x01\x00\xff\xff{"] {
            std::fs::write(&p, junk).unwrap();
            let e = read::<f32>(&p).unwrap_err().to_string();
            assert!(e.contains("a.npy"), "{e}");
        }
    }

    #[test]
    fn bad_files_are_named() {
        let e = decode::<f32>(Path::new("scores.npy"), b"hello world")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scores.npy") && e.contains("magic"), "{e}");
        let mut b = encode(&[2, 3], &[0f32; 6]);
        b.truncate(b.len() - 4);
        let e = decode::<f32>(Path::new("s.npy"), &b)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs 24 bytes"), "{e}");
        let b = encode(&[2], &[0f64; 2]);
        let e = decode::<f32>(Path::new("s.npy"), &b)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dtype <f8"), "{e}");
    }
}
