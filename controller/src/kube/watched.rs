//! A CohortRollout as the controller's watch reads it: the members the cache drops
//! ([`super::cache::keep_what_is_read`]) are passed over while parsing instead of being parsed and
//! then dropped. A status carries up to 50 decisions, and every status write comes back as a watch
//! event: with 10,000 rollouts, parsing those histories to throw them away was a tenth of the
//! controller's CPU (rollouts-bench).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use rollout::api::CohortRollout;
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, Visitor,
};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Members of `metadata` passed over: who wrote which field (a JSON tree per writer).
const METADATA_SKIPPED: &[&str] = &["managedFields"];
/// Members of `status` passed over: a round reads its status whole from the API server.
const STATUS_SKIPPED: &[&str] = &["history", "lastAnalysis", "outbox"];

/// A CohortRollout without what the cache drops; the same kind, group and version.
#[derive(Clone, Debug)]
pub struct WatchedRollout(pub CohortRollout);

impl Resource for WatchedRollout {
    type DynamicType = ();
    type Scope = <CohortRollout as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        CohortRollout::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        CohortRollout::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        CohortRollout::version(dt)
    }
    fn api_version(dt: &()) -> Cow<'_, str> {
        CohortRollout::api_version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        CohortRollout::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

impl<'de> Deserialize<'de> for WatchedRollout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RolloutVisitor)
    }
}

struct RolloutVisitor;

impl<'de> Visitor<'de> for RolloutVisitor {
    type Value = WatchedRollout;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CohortRollout")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WatchedRollout, A::Error> {
        let (mut metadata, mut spec, mut status) = (None, None, None);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "metadata" => metadata = Some(map.next_value_seed(Without::new(METADATA_SKIPPED))?),
                "spec" => spec = Some(map.next_value()?),
                "status" => status = map.next_value_seed(Optional(Without::new(STATUS_SKIPPED)))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(WatchedRollout(CohortRollout {
            metadata: metadata.ok_or_else(|| de::Error::missing_field("metadata"))?,
            spec: spec.ok_or_else(|| de::Error::missing_field("spec"))?,
            status,
        }))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(key)))
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(key.to_string())))
    }
}

/// `T` parsed from an object with the members named in `skip` passed over unparsed.
struct Without<T> {
    skip: &'static [&'static str],
    parsed: PhantomData<T>,
}

impl<T> Without<T> {
    fn new(skip: &'static [&'static str]) -> Self {
        Without {
            skip,
            parsed: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Without<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(Skipping {
            inner: deserializer,
            skip: self.skip,
        })
    }
}

/// `null` or absent as `None`; anything else as the seed reads it.
struct Optional<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Optional<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Optional<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

/// A deserializer that hands a struct's or map's visitor the object's members without `skip`.
/// Only the outermost object is filtered: its members' values are read by the inner deserializer.
struct Skipping<D> {
    inner: D,
    skip: &'static [&'static str],
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Skipping<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(SkippingVisitor {
            inner: visitor,
            skip: self.skip,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = SkippingVisitor {
            inner: visitor,
            skip: self.skip,
        };
        self.inner.deserialize_struct(name, fields, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

struct SkippingVisitor<V> {
    inner: V,
    skip: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for SkippingVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(SkippingMap {
            inner: map,
            skip: self.skip,
        })
    }
}

struct SkippingMap<A> {
    inner: A,
    skip: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SkippingMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.inner.next_key::<Key<'de>>()? {
            if self.skip.contains(&&*key.0) {
                self.inner.next_value::<IgnoredAny>()?;
                continue;
            }
            let key: &str = &key.0;
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}
