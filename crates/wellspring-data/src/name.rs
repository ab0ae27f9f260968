//! [`DatasetName`]: the datasets this crate can load, by name.

use std::fmt;
use std::str::FromStr;

use crate::error::DataError;

/// A dataset this crate knows how to load and fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetName {
    /// MNIST digits, IDX, 60k/10k, `[1, 28, 28]`, 10 classes (embedded).
    Mnist,
    /// Fashion-MNIST, IDX, 60k/10k, `[1, 28, 28]`, 10 classes.
    FashionMnist,
    /// CIFAR-10 binary batches, 50k/10k, `[3, 32, 32]`, 10 classes.
    Cifar10,
    /// CIFAR-100 binary, 50k/10k, `[3, 32, 32]`, 100 fine or 20 coarse classes.
    Cifar100,
    /// UCI Concrete Compressive Strength, 1030 rows, regression (embedded).
    Concrete,
    /// UCI Energy Efficiency (ENB2012), 768 rows, regression on Y1/Y2 (embedded).
    Energy,
    /// FICO HELOC, 9871 usable rows (of 10459), binary (Bad = 1).
    Heloc,
    /// UCI Adult / Census Income, 32561/16281, binary (`>50K` = 1) (embedded).
    Adult,
    /// Breast Cancer Wisconsin (Diagnostic), 569 rows, binary (embedded).
    BreastCancer,
    /// UCI Optdigits, 3823/1797, 8x8 counts, 10 classes (embedded).
    Optdigits,
    /// SST-2 (GLUE), 67349 train / 872 dev, binary sentiment, tokens.
    Sst2,
}

impl DatasetName {
    /// Every dataset, in declaration order.
    pub const ALL: [DatasetName; 11] = [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Cifar10,
        DatasetName::Cifar100,
        DatasetName::Concrete,
        DatasetName::Energy,
        DatasetName::Heloc,
        DatasetName::Adult,
        DatasetName::BreastCancer,
        DatasetName::Optdigits,
        DatasetName::Sst2,
    ];

    /// Canonical name, as accepted by [`FromStr`] and `cargo xtask fetch-data`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
            DatasetName::Concrete => "concrete",
            DatasetName::Energy => "energy",
            DatasetName::Heloc => "heloc",
            DatasetName::Adult => "adult",
            DatasetName::BreastCancer => "breast-cancer",
            DatasetName::Optdigits => "optdigits",
            DatasetName::Sst2 => "sst2",
        }
    }

    /// Subdirectory of a data directory holding this dataset's files (the
    /// layout of `../shared/datasets/` and of the repo's `datasets/`).
    pub fn subdir(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
            DatasetName::Concrete => "concrete",
            DatasetName::Energy => "energy-efficiency",
            DatasetName::Heloc => "heloc",
            DatasetName::Adult => "adult",
            DatasetName::BreastCancer => "breast-cancer-wisconsin",
            DatasetName::Optdigits => "optdigits",
            DatasetName::Sst2 => "sst2",
        }
    }

    /// True if the dataset's files ship in the repository's `datasets/` directory.
    pub fn is_embedded(self) -> bool {
        matches!(
            self,
            DatasetName::Mnist
                | DatasetName::Concrete
                | DatasetName::Energy
                | DatasetName::Adult
                | DatasetName::BreastCancer
                | DatasetName::Optdigits
        )
    }

    /// True for regression datasets (Concrete, Energy).
    pub fn is_regression(self) -> bool {
        matches!(self, DatasetName::Concrete | DatasetName::Energy)
    }

    /// True for tabular datasets (the ones [`crate::Standardizer`] applies to).
    pub fn is_table(self) -> bool {
        matches!(
            self,
            DatasetName::Concrete
                | DatasetName::Energy
                | DatasetName::Heloc
                | DatasetName::Adult
                | DatasetName::BreastCancer
                | DatasetName::Optdigits
        )
    }

    /// True if the dataset has no official test split (split by a seeded shuffle).
    pub fn needs_holdout(self) -> bool {
        matches!(
            self,
            DatasetName::Concrete
                | DatasetName::Energy
                | DatasetName::Heloc
                | DatasetName::BreastCancer
        )
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    /// Case-insensitive; `_` and `-` are interchangeable; a few aliases
    /// (`fmnist`, `cifar-10`, `energy-efficiency`, `breast-cancer-wisconsin`, `digits`).
    fn from_str(s: &str) -> Result<Self, DataError> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        let name = match key.as_str() {
            "mnist" => DatasetName::Mnist,
            "fashion-mnist" | "fashionmnist" | "fmnist" => DatasetName::FashionMnist,
            "cifar10" | "cifar-10" => DatasetName::Cifar10,
            "cifar100" | "cifar-100" => DatasetName::Cifar100,
            "concrete" => DatasetName::Concrete,
            "energy" | "energy-efficiency" | "enb2012" => DatasetName::Energy,
            "heloc" => DatasetName::Heloc,
            "adult" | "census-income" => DatasetName::Adult,
            "breast-cancer" | "breast-cancer-wisconsin" | "bcw" => DatasetName::BreastCancer,
            "optdigits" | "digits" => DatasetName::Optdigits,
            "sst2" | "sst-2" => DatasetName::Sst2,
            _ => {
                return Err(DataError::UnknownDataset {
                    name: s.to_string(),
                    known: DatasetName::ALL
                        .iter()
                        .map(|d| d.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DatasetName::ALL {
            assert_eq!(d.as_str().parse::<DatasetName>().unwrap(), d);
            assert_eq!(d.to_string(), d.as_str());
        }
        assert_eq!(
            "Fashion_MNIST".parse::<DatasetName>().unwrap(),
            DatasetName::FashionMnist
        );
        let e = "imagenet".parse::<DatasetName>().unwrap_err().to_string();
        assert!(e.contains("imagenet") && e.contains("mnist"), "{e}");
    }
}
