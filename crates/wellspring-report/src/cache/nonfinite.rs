//! Finds the non-finite floats in a serialisable value.
//!
//! JSON has no NaN or infinity: `serde_json` writes both as `null`, the same
//! as a missing `Option`. A cache key built from JSON alone would then give
//! `lr = NaN`, `lr = inf` and `lr = None` one digest. [`non_finite_leaves`]
//! walks the value with its own serializer and lists every non-finite float
//! with its leaf position (the index of the scalar in serialisation order),
//! which the key stores beside the JSON so the three differ.

use serde::Serialize;
use serde::ser;

/// `(leaf index, "NaN" | "inf" | "-inf")` for every non-finite float in `value`.
pub(crate) fn non_finite_leaves<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<(u64, String)>, serde_json::Error> {
    let mut w = Walker::default();
    value.serialize(&mut w)?;
    Ok(w.found)
}

#[derive(Default)]
struct Walker {
    leaf: u64,
    found: Vec<(u64, String)>,
}

impl Walker {
    fn leaf(&mut self) {
        self.leaf += 1;
    }
    fn float(&mut self, v: f64) {
        if !v.is_finite() {
            self.found.push((self.leaf, format!("{v:?}")));
        }
        self.leaf();
    }
}

type R = Result<(), serde_json::Error>;

macro_rules! leaves {
    ($($f:ident: $t:ty),*) => {
        $(fn $f(self, _v: $t) -> R { self.leaf(); Ok(()) })*
    };
}

impl ser::Serializer for &mut Walker {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    leaves!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
        serialize_unit_struct: &'static str);

    fn serialize_f32(self, v: f32) -> R {
        self.float(v as f64);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> R {
        self.float(v);
        Ok(())
    }
    fn serialize_none(self) -> R {
        self.leaf();
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit(self) -> R {
        self.leaf();
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
        self.leaf();
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> R {
        self.leaf();
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, serde_json::Error> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, serde_json::Error> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, serde_json::Error> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, serde_json::Error> {
        self.leaf();
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, serde_json::Error> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, serde_json::Error> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, serde_json::Error> {
        self.leaf();
        Ok(self)
    }
}

macro_rules! compound {
    ($tr:ident, $m:ident) => {
        impl ser::$tr for &mut Walker {
            type Ok = ();
            type Error = serde_json::Error;
            fn $m<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
                v.serialize(&mut **self)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    };
}
compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

impl ser::SerializeMap for &mut Walker {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> R {
        k.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(&mut **self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

macro_rules! fields {
    ($tr:ident) => {
        impl ser::$tr for &mut Walker {
            type Ok = ();
            type Error = serde_json::Error;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> R {
                v.serialize(&mut **self)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    };
}
fields!(SerializeStruct);
fields!(SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct P {
        a: Option<f64>,
        b: Option<f64>,
        c: Vec<f32>,
    }

    #[test]
    fn positions_and_kinds_are_kept() {
        let f = |a, b| non_finite_leaves(&P { a, b, c: vec![1.0] }).unwrap();
        assert_eq!(f(Some(f64::NAN), None), vec![(0, "NaN".to_string())]);
        assert_eq!(f(None, Some(f64::NAN)), vec![(1, "NaN".to_string())]);
        assert_eq!(f(None, Some(f64::INFINITY)), vec![(1, "inf".to_string())]);
        assert_eq!(
            f(None, Some(f64::NEG_INFINITY)),
            vec![(1, "-inf".to_string())]
        );
        assert!(f(None, Some(1.0)).is_empty());
        assert!(f(None, None).is_empty());
    }
}
