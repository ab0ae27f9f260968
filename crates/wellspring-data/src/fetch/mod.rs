//! Checksummed fetch: download dataset files through a [`Downloader`], verify
//! their sha256, and move them into place atomically.
//!
//! Which check applies ([`Check`]): a file is accepted if the sha256 of its
//! bytes equals the registered `sha256` ([`Check::Stored`]), or, for a `.gz`
//! file with a registered `content_sha256`, if the sha256 of its decompressed
//! bytes equals that ([`Check::Content`]). The second rule is what accepts
//! LeCun's original MNIST `.gz` files (our stored copies were recompressed, so
//! their bytes differ but the content is identical) and Debian's Fashion-MNIST
//! image containers. Mirrors that serve the plain content of a stored `.gz`
//! ([`Served::Plain`], UCI Adult) are checked against `content_sha256` and
//! gzipped locally.
//!
//! Archives (CIFAR `.tar.gz`, GLUE SST-2 `.zip`) are downloaded, checked
//! against the archive sha256 when one is registered, extracted with the
//! system `tar -xzf` / `unzip`, and each member is then verified like a file.
//! Nothing here runs at test time against the network: tests use
//! [`LocalDownloader`].

mod registry;

pub use registry::{
    Archive, ArchiveKind, DatasetSource, Mirror, RemoteFile, Served, registry, source,
};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::dir::DataDir;
use crate::error::{DataError, Result};
use crate::name::DatasetName;

/// Fetches a URL into a local file.
pub trait Downloader {
    /// Downloads `url` to `dest` (created or overwritten); errors name the URL.
    fn download(&self, url: &str, dest: &Path) -> Result<()>;
}

/// Shells out to `curl -fsSL -o <dest> <url>`.
#[derive(Clone, Debug)]
pub struct CurlDownloader {
    program: PathBuf,
}

impl Default for CurlDownloader {
    fn default() -> Self {
        Self {
            program: PathBuf::from("curl"),
        }
    }
}

impl CurlDownloader {
    /// Uses `curl` from `PATH`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses the given curl executable.
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }
}

impl Downloader for CurlDownloader {
    fn download(&self, url: &str, dest: &Path) -> Result<()> {
        let out = Command::new(&self.program)
            .args(["-fsSL", "--retry", "2", "-o"])
            .arg(dest)
            .arg(url)
            .output()
            .map_err(|e| DataError::Tool {
                tool: self.program.display().to_string(),
                reason: if e.kind() == std::io::ErrorKind::NotFound {
                    "not found; install curl or fetch the files by hand into WELLSPRING_DATA".into()
                } else {
                    e.to_string()
                },
            })?;
        if !out.status.success() {
            return Err(DataError::Download {
                url: url.to_string(),
                reason: format!(
                    "curl exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(())
    }
}

/// Serves URLs from a local directory: `file://<path>` URLs are copied from
/// that path, any other URL from `<root>/<last path segment>` (offline mirrors, tests).
#[derive(Clone, Debug)]
pub struct LocalDownloader {
    root: PathBuf,
}

impl LocalDownloader {
    /// Serves files from `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl Downloader for LocalDownloader {
    fn download(&self, url: &str, dest: &Path) -> Result<()> {
        let src = match url.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None => self.root.join(url.rsplit('/').next().unwrap_or(url)),
        };
        std::fs::copy(&src, dest).map_err(|e| DataError::Download {
            url: url.to_string(),
            reason: format!("{}: {e}", src.display()),
        })?;
        Ok(())
    }
}

/// Which checksum rule accepted a file (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The stored bytes match `sha256`.
    Stored,
    /// The decompressed bytes match `content_sha256`.
    Content,
}

/// What [`install`] did with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    /// Already present and verified.
    Present(Check),
    /// Downloaded from `url` and verified.
    Downloaded {
        /// The mirror used.
        url: String,
        /// The rule that accepted it.
        check: Check,
    },
    /// Extracted from a downloaded archive and verified.
    Extracted {
        /// The archive.
        archive: String,
        /// The rule that accepted it.
        check: Check,
    },
    /// Not downloadable, but present (verified) in the repository's `datasets/`.
    Embedded(Check),
    /// Optional file with no public source; left out.
    Skipped,
}

/// One line of an install report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// Registered file name.
    pub file: String,
    /// Where it is (or would be).
    pub path: PathBuf,
    /// What happened.
    pub status: FileStatus,
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| DataError::io(path, e))?;
    Ok(hex(&h.finalize()))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn gunzip_sha(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = dec.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(hex(&h.finalize()))
}

/// Checks a file against its registered hashes (see [`Check`]); a mismatch
/// names the file, the expected and the actual hash.
pub fn check_file(path: &Path, file: &RemoteFile) -> Result<Check> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(file.sha256) {
        return Ok(Check::Stored);
    }
    let mut expected = file.sha256.to_string();
    let mut got = actual;
    if let Some(content) = file.content_sha256 {
        match gunzip_sha(path) {
            Some(c) if c.eq_ignore_ascii_case(content) => return Ok(Check::Content),
            Some(c) => {
                expected = format!("{expected} (or decompressed {content})");
                got = format!("{got} (decompressed {c})");
            }
            None => expected = format!("{expected} (or a gzip file decompressing to {content})"),
        }
    }
    Err(DataError::Checksum {
        path: path.to_path_buf(),
        file: file.name.to_string(),
        expected,
        actual: got,
    })
}

fn check_plain(path: &Path, file: &RemoteFile) -> Result<Check> {
    let expected = file.content_sha256.unwrap_or(file.sha256);
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(Check::Content)
    } else {
        Err(DataError::Checksum {
            path: path.to_path_buf(),
            file: file.name.to_string(),
            expected: format!("{expected} (uncompressed content)"),
            actual,
        })
    }
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.part-{}", std::process::id()))
}

fn gzip_into(src: &Path, dest: &Path) -> Result<()> {
    let mut input = std::fs::File::open(src).map_err(|e| DataError::io(src, e))?;
    let out = std::fs::File::create(dest).map_err(|e| DataError::io(dest, e))?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::best());
    std::io::copy(&mut input, &mut enc).map_err(|e| DataError::io(dest, e))?;
    enc.finish()
        .and_then(|mut f| f.flush())
        .map_err(|e| DataError::io(dest, e))?;
    Ok(())
}

/// Verifies `tmp` as `served`, gzips it if needed, and renames it onto `dest`;
/// on any failure the temporary files are deleted.
fn place(tmp: &Path, dest: &Path, file: &RemoteFile, served: Served) -> Result<Check> {
    let needs_gzip = served == Served::Plain && file.name.ends_with(".gz");
    let checked = match served {
        Served::AsStored => check_file(tmp, file),
        Served::Plain => check_plain(tmp, file),
    };
    let check = match checked {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
    };
    let ready = if needs_gzip {
        let gz = tmp.with_extension("gz-part");
        let r = gzip_into(tmp, &gz);
        let _ = std::fs::remove_file(tmp);
        if let Err(e) = r {
            let _ = std::fs::remove_file(&gz);
            return Err(e);
        }
        gz
    } else {
        tmp.to_path_buf()
    };
    // Same directory, so the rename is atomic: readers see no half-written file.
    std::fs::rename(&ready, dest).map_err(|e| {
        let _ = std::fs::remove_file(&ready);
        DataError::io(dest, e)
    })?;
    Ok(check)
}

/// Installs one (non-archive) file of dataset `name` under `root/<subdir>/`:
/// skips it if present and verified, else tries each mirror (a failed
/// download moves on to the next; a checksum mismatch is an error).
pub fn install_file(
    root: &Path,
    name: DatasetName,
    file: &RemoteFile,
    downloader: &dyn Downloader,
) -> Result<FileReport> {
    let dir = root.join(name.subdir());
    let dest = dir.join(file.name);
    let report = |status| FileReport {
        file: file.name.to_string(),
        path: dest.clone(),
        status,
    };
    if dest.is_file()
        && let Ok(c) = check_file(&dest, file)
    {
        return Ok(report(FileStatus::Present(c)));
    }
    if file.mirrors.is_empty() {
        let emb = DataDir::embedded_root().join(name.subdir()).join(file.name);
        if name.is_embedded() && emb.is_file() {
            let c = check_file(&emb, file)?;
            return Ok(FileReport {
                file: file.name.to_string(),
                path: emb,
                status: FileStatus::Embedded(c),
            });
        }
        if !file.required {
            return Ok(report(FileStatus::Skipped));
        }
        return Err(DataError::NoSource {
            dataset: name.to_string(),
            file: file.name.to_string(),
            how: file.note.to_string(),
        });
    }
    std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
    let mut failures = Vec::new();
    for m in file.mirrors {
        let tmp = temp_path(&dir, file.name);
        if let Err(e) = downloader.download(m.url, &tmp) {
            let _ = std::fs::remove_file(&tmp);
            failures.push(e.to_string());
            continue;
        }
        let check = place(&tmp, &dest, file, m.served)?;
        return Ok(report(FileStatus::Downloaded {
            url: m.url.to_string(),
            check,
        }));
    }
    Err(DataError::Download {
        url: file.mirrors[0].url.to_string(),
        reason: format!("every mirror failed: {}", failures.join("; ")),
    })
}

fn extract(kind: ArchiveKind, archive: &Path, into: &Path) -> Result<()> {
    let (tool, mut cmd) = match kind {
        ArchiveKind::TarGz => {
            let mut c = Command::new("tar");
            c.arg("-xzf").arg(archive).arg("-C").arg(into);
            ("tar", c)
        }
        ArchiveKind::Zip => {
            let mut c = Command::new("unzip");
            c.arg("-q").arg("-o").arg(archive).arg("-d").arg(into);
            ("unzip", c)
        }
    };
    let out = cmd.output().map_err(|e| DataError::Tool {
        tool: tool.into(),
        reason: format!("cannot run: {e}"),
    })?;
    if !out.status.success() {
        return Err(DataError::Tool {
            tool: tool.into(),
            reason: format!(
                "extracting {} failed ({}): {}",
                archive.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// Installs an archive dataset (CIFAR, SST-2) under `root/<subdir>/`:
/// downloads the archive, checks its sha256 if registered, extracts it with
/// `tar`/`unzip` into a temporary directory, verifies and moves each member
/// into place, then deletes the archive and the temporary directory.
pub fn install_archive(
    root: &Path,
    src: &DatasetSource,
    archive: &Archive,
    downloader: &dyn Downloader,
) -> Result<Vec<FileReport>> {
    let dir = root.join(src.name.subdir());
    let present: Vec<Option<Check>> = src
        .files
        .iter()
        .map(|f| {
            let p = dir.join(f.name);
            if p.is_file() {
                check_file(&p, f).ok()
            } else {
                None
            }
        })
        .collect();
    if present.iter().all(Option::is_some) {
        return Ok(src
            .files
            .iter()
            .zip(present)
            .map(|(f, c)| FileReport {
                file: f.name.to_string(),
                path: dir.join(f.name),
                status: FileStatus::Present(c.expect("all present")),
            })
            .collect());
    }
    std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
    let tmp = temp_path(&dir, archive.name);
    let work = dir.join(format!(".extract-{}", std::process::id()));
    let result = (|| -> Result<Vec<FileReport>> {
        downloader.download(archive.url, &tmp)?;
        if let Some(expected) = archive.sha256 {
            let actual = sha256_file(&tmp)?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(DataError::Checksum {
                    path: tmp.clone(),
                    file: archive.name.to_string(),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        std::fs::create_dir_all(&work).map_err(|e| DataError::io(&work, e))?;
        extract(archive.kind, &tmp, &work)?;
        let mut reports = Vec::new();
        for f in src.files {
            let (member, _) = archive
                .members
                .iter()
                .find(|(_, stored)| *stored == f.name)
                .ok_or_else(|| DataError::NoSource {
                    dataset: src.name.to_string(),
                    file: f.name.to_string(),
                    how: format!("not a member of {}", archive.name),
                })?;
            let m = work.join(member);
            if !m.is_file() {
                return Err(DataError::format(
                    &tmp,
                    format!("archive {} has no member {member}", archive.name),
                ));
            }
            let served = if f.name.ends_with(".gz") && !member.ends_with(".gz") {
                Served::Plain
            } else {
                Served::AsStored
            };
            let dest = dir.join(f.name);
            let check = place(&m, &dest, f, served)?;
            reports.push(FileReport {
                file: f.name.to_string(),
                path: dest,
                status: FileStatus::Extracted {
                    archive: archive.name.to_string(),
                    check,
                },
            });
        }
        Ok(reports)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Installs every file of `name` under `root/<subdir>/` (see [`install_file`]
/// and [`install_archive`]); the root directory must exist.
pub fn install(
    name: DatasetName,
    root: &Path,
    downloader: &dyn Downloader,
) -> Result<Vec<FileReport>> {
    if !root.is_dir() {
        return Err(DataError::MissingDir {
            path: root.to_path_buf(),
            origin: "install target".into(),
        });
    }
    let src = source(name);
    if let Some(a) = &src.archive {
        return install_archive(root, src, a, downloader);
    }
    src.files
        .iter()
        .map(|f| install_file(root, name, f, downloader))
        .collect()
}

/// Verifies the files of `name` already present under `root/<subdir>/`:
/// every required file must exist and match; optional files are checked if
/// present. Returns each checked file with the rule that accepted it.
pub fn verify(name: DatasetName, root: &Path) -> Result<Vec<(PathBuf, Check)>> {
    if !root.is_dir() {
        return Err(DataError::MissingDir {
            path: root.to_path_buf(),
            origin: "verify target".into(),
        });
    }
    let dir = root.join(name.subdir());
    let mut out = Vec::new();
    for f in source(name).files {
        let p = dir.join(f.name);
        if !p.is_file() {
            if f.required {
                return Err(DataError::MissingFile {
                    dataset: name.to_string(),
                    subdir: name.subdir().to_string(),
                    file: f.name.to_string(),
                    searched: vec![dir.clone()],
                });
            }
            continue;
        }
        let c = check_file(&p, f)?;
        out.push((p, c));
    }
    Ok(out)
}
