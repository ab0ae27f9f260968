//! Text: a whitespace tokeniser, a [`Vocabulary`] built from a training split
//! only, and the SST-2 loader (Socher et al. 2013, GLUE version).

use std::collections::HashMap;
use std::path::Path;

use wellspring_core::{Dataset, Features, Split, Targets};

use crate::csv::{CsvOptions, CsvTable};
use crate::dir::DataDir;
use crate::error::{DataError, Result};
use crate::name::DatasetName;

/// Splits already-tokenised text (SST-2 is lower-cased and tokenised) on whitespace.
pub fn tokenize(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
}

/// Limits for [`Vocabulary::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VocabParams {
    /// Keep tokens seen at least this often (≥ 1).
    pub min_count: usize,
    /// Keep at most this many entries, `<unk>` included (≥ 2); `None` = no limit.
    pub max_size: Option<usize>,
}

impl Default for VocabParams {
    /// `min_count = 1`, no size limit.
    fn default() -> Self {
        Self {
            min_count: 1,
            max_size: None,
        }
    }
}

impl VocabParams {
    /// Checks the limits.
    pub fn check(&self) -> Result<()> {
        if self.min_count == 0 {
            return Err(DataError::invalid_param(
                "vocabulary min_count",
                0,
                "must be at least 1",
            ));
        }
        if let Some(m) = self.max_size
            && m < 2
        {
            return Err(DataError::invalid_param(
                "vocabulary max_size",
                m,
                "must be at least 2 (<unk> plus one token)",
            ));
        }
        Ok(())
    }
}

/// Token ↔ id map; id 0 is `<unk>`, the others are ordered by descending
/// training count, ties broken alphabetically (deterministic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    tokens: Vec<String>,
    counts: Vec<usize>,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// The unknown-token string.
    pub const UNK: &'static str = "<unk>";
    /// The unknown-token id.
    pub const UNK_ID: u32 = 0;

    /// Builds a vocabulary from training texts (tokenised with [`tokenize`]).
    pub fn build<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        params: &VocabParams,
    ) -> Result<Self> {
        params.check()?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for t in texts {
            for tok in tokenize(t) {
                *counts.entry(tok).or_insert(0) += 1;
            }
        }
        let mut kept: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|&(t, c)| c >= params.min_count && t != Self::UNK)
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if let Some(m) = params.max_size {
            kept.truncate(m - 1);
        }
        let mut tokens = vec![Self::UNK.to_string()];
        let mut cnt = vec![0];
        for (t, c) in kept {
            tokens.push(t.to_string());
            cnt.push(c);
        }
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Ok(Self {
            tokens,
            counts: cnt,
            index,
        })
    }

    /// Number of entries, `<unk>` included (the `vocab_size` of token features).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true (`<unk>` is always present).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Id of `token`, or [`Vocabulary::UNK_ID`] if unknown.
    pub fn id(&self, token: &str) -> u32 {
        self.index.get(token).copied().unwrap_or(Self::UNK_ID)
    }

    /// Token of `id`, if in range.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Training count of `id` (0 for `<unk>`).
    pub fn count(&self, id: u32) -> usize {
        self.counts.get(id as usize).copied().unwrap_or(0)
    }

    /// All tokens, in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Token ids of `text`, truncated to `max_tokens` if given.
    pub fn encode(&self, text: &str, max_tokens: Option<usize>) -> Vec<u32> {
        let it = tokenize(text).map(|t| self.id(t));
        match max_tokens {
            Some(m) => it.take(m).collect(),
            None => it.collect(),
        }
    }

    /// Encodes many texts as ragged [`Features::Tokens`].
    pub fn encode_all<'a>(
        &self,
        texts: impl IntoIterator<Item = &'a str>,
        max_tokens: Option<usize>,
    ) -> Features {
        let mut ids = Vec::new();
        let mut offsets = vec![0];
        for t in texts {
            ids.extend(self.encode(t, max_tokens));
            offsets.push(ids.len());
        }
        Features::Tokens {
            ids,
            offsets,
            vocab_size: self.len(),
        }
    }
}

/// Sentences and labels of a GLUE-style TSV (`sentence<TAB>label` header).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledText {
    /// The sentences.
    pub sentences: Vec<String>,
    /// Their labels (0 = negative, 1 = positive).
    pub labels: Vec<usize>,
}

/// Reads a GLUE SST-2 TSV (gzip detected from the content).
pub fn read_sst2_tsv(path: &Path) -> Result<LabelledText> {
    let t = CsvTable::read(path, &CsvOptions::tsv())?;
    let s = t.column("sentence")?;
    let l = t.column("label")?;
    Ok(LabelledText {
        sentences: t.rows().iter().map(|r| r.fields[s].clone()).collect(),
        labels: t.int_labels(l, 2)?,
    })
}

/// SST-2 from `sst2/train.tsv(.gz)` and `sst2/dev.tsv` (the test split is GLUE's
/// dev set: 67349 / 872). The vocabulary is built from the training split only.
pub fn sst2(
    dir: &DataDir,
    vocab: &VocabParams,
    max_tokens: Option<usize>,
) -> Result<(Split, Vocabulary)> {
    let train = read_sst2_tsv(&dir.find(DatasetName::Sst2, &["train.tsv.gz", "train.tsv"])?)?;
    let dev = read_sst2_tsv(&dir.find(DatasetName::Sst2, &["dev.tsv", "dev.tsv.gz"])?)?;
    let v = Vocabulary::build(train.sentences.iter().map(String::as_str), vocab)?;
    let names = vec!["negative".to_string(), "positive".to_string()];
    let make = |t: LabelledText, split: &str| -> Result<Dataset> {
        let f = v.encode_all(t.sentences.iter().map(String::as_str), max_tokens);
        let ds = Dataset::new(
            format!("sst2-{split}"),
            f,
            Targets::Classes {
                labels: t.labels,
                n_classes: 2,
            },
        )?;
        Ok(ds.with_class_names(names.clone())?)
    };
    let split = Split {
        train: make(train, "train")?,
        test: make(dev, "test")?,
        valid: None,
    };
    Ok((split, v))
}

/// A language-modelling corpus from a token dataset: every row with at least
/// two tokens, predicting its own next tokens (`Targets::NextToken`, no
/// prompt). Returns the corpus and the rows of `data` it kept. Errors if
/// `data` holds dense features or no row has two tokens.
pub fn next_token_corpus(data: &Dataset, name: &str) -> Result<(Dataset, Vec<usize>)> {
    let Features::Tokens { vocab_size, .. } = data.features() else {
        return Err(DataError::invalid_param(
            format!("dataset {}", data.name()),
            "dense features",
            "a language-model corpus needs token sequences",
        ));
    };
    let keep: Vec<usize> = (0..data.len())
        .filter(|&i| data.features().token_row(i).len() >= 2)
        .collect();
    if keep.is_empty() {
        return Err(DataError::invalid_param(
            format!("dataset {}", data.name()),
            "no row with two tokens",
            "a language-model corpus needs sequences of at least two tokens",
        ));
    }
    let features = data.features().select(&keep);
    let ds = Dataset::new(
        name,
        features,
        Targets::NextToken {
            prompt_lens: vec![0; keep.len()],
            vocab_size: *vocab_size,
        },
    )?;
    Ok((ds, keep))
}

/// Prompt/completion pairs as a next-token dataset: each row is the tokens
/// of `prompt` then `completion` (encoded with `vocab`), and only the
/// completion's tokens are targets (what the log-probability of a completion
/// given its prompt measures). Errors on an empty prompt or completion.
pub fn prompt_completions(
    vocab: &Vocabulary,
    pairs: &[(&str, &str)],
    name: &str,
) -> Result<Dataset> {
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    let mut prompt_lens = Vec::with_capacity(pairs.len());
    for (k, (prompt, completion)) in pairs.iter().enumerate() {
        let p = vocab.encode(prompt, None);
        let c = vocab.encode(completion, None);
        if p.is_empty() || c.is_empty() {
            return Err(DataError::invalid_param(
                format!("prompt/completion pair {k}"),
                format!("{prompt:?} / {completion:?}"),
                "both the prompt and the completion need at least one token",
            ));
        }
        prompt_lens.push(p.len());
        ids.extend(p);
        ids.extend(c);
        offsets.push(ids.len());
    }
    Ok(Dataset::new(
        name,
        Features::Tokens {
            ids,
            offsets,
            vocab_size: vocab.len(),
        },
        Targets::NextToken {
            prompt_lens,
            vocab_size: vocab.len(),
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_order_limits_and_unk() {
        let texts = ["b a a", "c a b", "d"];
        let v = Vocabulary::build(texts, &VocabParams::default()).unwrap();
        assert_eq!(v.tokens(), &["<unk>", "a", "b", "c", "d"]);
        assert_eq!(v.encode("a zz d", None), vec![1, 0, 4]);
        let v = Vocabulary::build(
            texts,
            &VocabParams {
                min_count: 2,
                max_size: Some(2),
            },
        )
        .unwrap();
        assert_eq!(v.tokens(), &["<unk>", "a"]);
        assert_eq!(v.count(1), 3);
        assert!(
            Vocabulary::build(
                texts,
                &VocabParams {
                    min_count: 0,
                    max_size: None
                }
            )
            .is_err()
        );
    }
}
