//! Fetch with a local downloader: no network at test time.

use std::io::{Read, Write};
use std::path::Path;

use wellspring_data::fetch::Downloader;
use wellspring_data::fetch::{
    Archive, ArchiveKind, Check, DatasetSource, FileStatus, LocalDownloader, Mirror, RemoteFile,
    Served, check_file, install, install_archive, install_file, sha256_hex, source, verify,
};
use wellspring_data::{CurlDownloader, DataDir, DatasetName};

fn no_temp_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
        .unwrap_or(true)
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn installs_mnist_labels_from_a_local_mirror() {
    let root = tempfile::tempdir().unwrap();
    let mirror = DataDir::embedded_root().join("mnist");
    let dl = LocalDownloader::new(&mirror);
    let file = source(DatasetName::Mnist).files[3];
    assert_eq!(file.name, "t10k-labels-idx1-ubyte.gz");
    let r = install_file(root.path(), DatasetName::Mnist, &file, &dl).unwrap();
    assert!(
        matches!(
            r.status,
            FileStatus::Downloaded {
                check: Check::Stored,
                ..
            }
        ),
        "{r:?}"
    );
    assert!(
        root.path()
            .join("mnist/t10k-labels-idx1-ubyte.gz")
            .is_file()
    );
    // Second run: already present.
    let r = install_file(root.path(), DatasetName::Mnist, &file, &dl).unwrap();
    assert_eq!(r.status, FileStatus::Present(Check::Stored));
    assert!(no_temp_files(&root.path().join("mnist")));
}

#[test]
fn a_different_gzip_container_passes_by_content() {
    // LeCun's original .gz bytes differ from our recompressed ones; the
    // decompressed sha256 accepts them.
    let mirror = tempfile::tempdir().unwrap();
    let stored = DataDir::embedded_root().join("mnist/t10k-labels-idx1-ubyte.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&stored).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    std::fs::write(
        mirror.path().join("t10k-labels-idx1-ubyte.gz"),
        enc.finish().unwrap(),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let file = source(DatasetName::Mnist).files[3];
    let r = install_file(
        root.path(),
        DatasetName::Mnist,
        &file,
        &LocalDownloader::new(mirror.path()),
    )
    .unwrap();
    assert!(
        matches!(
            r.status,
            FileStatus::Downloaded {
                check: Check::Content,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn plain_mirrors_are_checked_by_content_and_gzipped() {
    let mirror = tempfile::tempdir().unwrap();
    let stored = DataDir::embedded_root().join("adult/adult.test.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&stored).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    std::fs::write(mirror.path().join("adult.test"), &raw).unwrap();
    let root = tempfile::tempdir().unwrap();
    let file = source(DatasetName::Adult).files[1];
    assert_eq!(file.mirrors[0].served, Served::Plain);
    let r = install_file(
        root.path(),
        DatasetName::Adult,
        &file,
        &LocalDownloader::new(mirror.path()),
    )
    .unwrap();
    assert!(
        matches!(
            r.status,
            FileStatus::Downloaded {
                check: Check::Content,
                ..
            }
        ),
        "{r:?}"
    );
    let placed = root.path().join("adult/adult.test.gz");
    assert_eq!(placed.extension().unwrap(), "gz");
    assert_eq!(check_file(&placed, &file).unwrap(), Check::Content);
    assert!(no_temp_files(&root.path().join("adult")));
}

#[test]
fn checksum_mismatch_deletes_the_download() {
    let mirror = tempfile::tempdir().unwrap();
    std::fs::write(
        mirror.path().join("t10k-labels-idx1-ubyte.gz"),
        b"not the data",
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let file = source(DatasetName::Mnist).files[3];
    let e = install_file(
        root.path(),
        DatasetName::Mnist,
        &file,
        &LocalDownloader::new(mirror.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("sha256 mismatch"),
        "{e}"
    );
    assert!(
        e.contains(file.sha256) && e.contains(&sha256_hex(b"not the data")),
        "{e}"
    );
    assert!(!root.path().join("mnist/t10k-labels-idx1-ubyte.gz").exists());
    assert!(no_temp_files(&root.path().join("mnist")));
    // A corrupt file already present is named with both hashes.
    let junk = root.path().join("mnist/t10k-labels-idx1-ubyte.gz");
    std::fs::write(&junk, b"junk").unwrap();
    let e = check_file(&junk, &file).unwrap_err().to_string();
    assert!(
        e.contains(&junk.display().to_string()) && e.contains(&sha256_hex(b"junk")),
        "{e}"
    );
    // verify() wants every required file.
    let e = verify(DatasetName::Mnist, root.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn failed_mirrors_and_missing_tools_are_reported() {
    let root = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let file = source(DatasetName::Mnist).files[3];
    let e = install_file(
        root.path(),
        DatasetName::Mnist,
        &file,
        &LocalDownloader::new(empty.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("every mirror failed") && e.contains("ossci"),
        "{e}"
    );
    let e = CurlDownloader::with_program("/no/such/curl")
        .download("https://example.invalid/x", &root.path().join("x"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/no/such/curl") && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn non_downloadable_files() {
    let root = tempfile::tempdir().unwrap();
    let dl = LocalDownloader::new(root.path());
    let e = install(DatasetName::Heloc, root.path(), &dl)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("heloc_dataset_v1.csv") && e.contains("FICO"),
        "{e}"
    );
    // Embedded derived files are reported as embedded, optional ones skipped
    // when no mirror serves them.
    let r = install(DatasetName::Optdigits, root.path(), &dl).unwrap();
    assert!(
        r.iter()
            .all(|f| f.status == FileStatus::Embedded(Check::Stored)),
        "{r:?}"
    );
}

#[test]
fn archives_are_verified_extracted_and_cleaned_up() {
    // A tiny CIFAR-10-style archive built with the system tar.
    let work = tempfile::tempdir().unwrap();
    let inner = work.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&inner).unwrap();
    let batch = vec![3u8; 3073];
    std::fs::write(inner.join("test_batch.bin"), &batch).unwrap();
    let tgz = work.path().join("mini.tar.gz");
    let ok = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(work.path())
        .arg("cifar-10-batches-bin")
        .status();
    let Ok(status) = ok else {
        eprintln!("skipping archive test: tar not available");
        return;
    };
    assert!(status.success());
    let archive_sha = leak(wellspring_data::fetch::sha256_file(&tgz).unwrap());
    let files: &'static [RemoteFile] = Box::leak(Box::new([RemoteFile {
        name: "test_batch.bin",
        bytes: Some(3073),
        sha256: leak(sha256_hex(&batch)),
        content_sha256: None,
        mirrors: &[] as &[Mirror],
        required: true,
        note: "test",
    }]));
    let archive = Archive {
        name: "mini.tar.gz",
        url: "https://example.invalid/mini.tar.gz",
        sha256: Some(archive_sha),
        kind: ArchiveKind::TarGz,
        members: &[("cifar-10-batches-bin/test_batch.bin", "test_batch.bin")],
    };
    let src = DatasetSource {
        name: DatasetName::Cifar10,
        files,
        archive: Some(archive),
        license: "test",
        homepage: "test",
        citation: "test",
    };
    let root = tempfile::tempdir().unwrap();
    let dl = LocalDownloader::new(work.path());
    let r = install_archive(root.path(), &src, &archive, &dl).unwrap();
    assert!(
        matches!(
            r[0].status,
            FileStatus::Extracted {
                check: Check::Stored,
                ..
            }
        ),
        "{r:?}"
    );
    let dir = root.path().join("cifar10");
    assert_eq!(std::fs::read(dir.join("test_batch.bin")).unwrap(), batch);
    assert!(no_temp_files(&dir));
    let r = install_archive(root.path(), &src, &archive, &dl).unwrap();
    assert_eq!(r[0].status, FileStatus::Present(Check::Stored));
    // A wrong archive hash is refused before extraction.
    std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
    let bad = Archive {
        sha256: Some("00"),
        ..archive
    };
    let e = install_archive(root.path(), &src, &bad, &dl)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mini.tar.gz") && e.contains(archive_sha), "{e}");
    assert!(!dir.join("test_batch.bin").exists() && no_temp_files(&dir));
}

#[test]
fn registry_covers_every_dataset() {
    for name in DatasetName::ALL {
        let s = source(name);
        assert_eq!(s.name, name);
        assert!(!s.files.is_empty() && !s.license.is_empty());
        for f in s.files {
            assert_eq!(f.sha256.len(), 64, "{}", f.name);
            assert!(f.sha256.chars().all(|c| c.is_ascii_hexdigit()));
            if !f.mirrors.is_empty() || s.archive.is_some() || name.is_embedded() {
                continue;
            }
            // Neither downloadable nor embedded: must say how to get it.
            assert!(f.note.contains("WELLSPRING_DATA"), "{}", f.name);
        }
    }
}
