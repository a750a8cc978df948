//! The benchmark workload: a config far larger than a real one (10,000 cities, 100 rollouts) and a
//! request mix that walks every decision path, including rollouts at the end of the list.

use crate::rng::SplitMix64;
use cohort::schema::{
    Bucketing, City, GeoHeaders, Identity, Overrides, RequestMatch, Rollout, RolloutState,
    SluiceConfig, Stage, DEFAULT_ROUTING_HEADER,
};
use cohort::RequestFacts;
use std::collections::BTreeMap;

pub const CITY_COUNT: usize = 10_000;
pub const ROLLOUT_COUNT: usize = 100;
pub const REQUEST_COUNT: usize = 100_000;
/// Services named by authority-specific rollouts; each owns two rollouts (a path prefix, then the rest).
pub const SERVICE_COUNT: usize = 40;

pub const REGIONS: [&str; 20] = [
    "eu-south",
    "eu-west",
    "eu-north",
    "eu-central",
    "us-east",
    "us-west",
    "us-central",
    "ca-east",
    "sa-east",
    "sa-west",
    "af-south",
    "af-north",
    "me-central",
    "ap-south",
    "ap-east",
    "ap-northeast",
    "ap-southeast",
    "oc-east",
    "oc-west",
    "cn-north",
];

/// The override token and its SHA-256 (`sha256("test")`): a few requests carry a valid override.
pub const OVERRIDE_TOKEN: &str = "test";
const OVERRIDE_TOKEN_SHA256: &str =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mar", "ten", "vi", "sa", "bur", "ge", "no", "ri", "ham", "el", "do", "chi", "wan",
    "pe",
];

/// Every 10th service is named with an explicit port, so its requests must carry that port.
pub fn service_authority(service: usize) -> String {
    if service % 10 == 0 {
        format!("svc-{service:02}.shop.example.com:8443")
    } else {
        format!("svc-{service:02}.shop.example.com")
    }
}

/// A pronounceable, unique city key of 8..=20 bytes.
pub fn city_key(index: usize) -> String {
    format!(
        "{}{}{}-{index}",
        SYLLABLES[index % 16],
        SYLLABLES[(index / 16) % 16],
        SYLLABLES[(index / 256) % 16]
    )
}

/// Rollouts whose index is `4 (mod 5)` match any authority on a `/feature-N/` prefix; the last one takes
/// `/checkout/` on any authority. The others belong to the services, two per service.
pub fn is_any_authority(rollout: usize) -> bool {
    rollout % 5 == 4
}

pub fn config(seed: u64) -> SluiceConfig {
    let mut rng = SplitMix64::new(seed);
    let cities: BTreeMap<String, City> = (0..CITY_COUNT)
        .map(|i| {
            let city = City {
                population: rng.log_uniform(1_000.0, 10_000_000.0),
                region: REGIONS[rng.index(REGIONS.len())].to_string(),
            };
            (city_key(i), city)
        })
        .collect();
    let rollouts = (0..ROLLOUT_COUNT).map(|i| rollout(i, &mut rng)).collect();
    SluiceConfig {
        generation: 1,
        geo: GeoHeaders::default(),
        cities,
        identity: Identity::default(),
        overrides: Overrides {
            token_sha256: vec![OVERRIDE_TOKEN_SHA256.to_string()],
            ..Overrides::default()
        },
        rollouts,
    }
}

fn rollout(i: usize, rng: &mut SplitMix64) -> Rollout {
    let request_match = if i == ROLLOUT_COUNT - 1 {
        // Last in order: catches /checkout/ on hosts no service rollout names (others match nothing).
        Some(RequestMatch {
            authority: None,
            path_prefix: Some("/checkout/".to_string()),
        })
    } else if is_any_authority(i) {
        Some(RequestMatch {
            authority: None,
            path_prefix: Some(format!("/feature-{i}/")),
        })
    } else {
        let owned = i - i / 5; // index among the service rollouts
        let path_prefix = match owned % 4 {
            0 | 2 => Some("/checkout/".to_string()),
            1 => None,
            _ => Some("/".to_string()),
        };
        Some(RequestMatch {
            authority: Some(service_authority(owned / 2)),
            path_prefix,
        })
    };
    let region_count = [0, 0, 1, 2, 3][rng.index(5)]; // 0 = every region
    let first_region = rng.index(REGIONS.len());
    let regions = (0..region_count)
        .map(|r| REGIONS[(first_region + r) % REGIONS.len()].to_string())
        .collect();
    let max_city_population = (!rng.chance(333)).then(|| rng.log_uniform(10_000.0, 5_000_000.0));
    let bucketing = if i % 7 == 3 {
        Bucketing::Unleash
    } else {
        Bucketing::BasisPoints
    };
    let percent = match bucketing {
        Bucketing::Unleash => rng.below(101) as f64,
        Bucketing::BasisPoints => rng.below(10_001) as f64 / 100.0,
    };
    let state = match i {
        _ if i % 17 == 5 => RolloutState::RolledBack,
        _ if i % 19 == 7 => RolloutState::Promoted,
        _ if i % 3 == 2 => RolloutState::Paused,
        _ => RolloutState::Progressing,
    };
    Rollout {
        name: format!("rollout-{i:03}"),
        owner: None,
        request_match,
        salt: (i % 2 == 0).then(|| format!("rollout-{i:03}-v{}", 2 + i % 3)),
        bucketing,
        stage: Stage {
            regions,
            max_city_population,
            percent,
            mirror: None,
        },
        state,
        routing_header: if i % 10 == 3 {
            format!("x-sluice-cohort-{}", i % 3)
        } else {
            DEFAULT_ROUTING_HEADER.to_string()
        },
        guardrail: None,
    }
}

/// Request facts that own their bytes; `facts()` borrows them as the filter would.
#[derive(Debug, Clone, Default)]
pub struct OwnedFacts {
    pub authority: Vec<u8>,
    pub path: Vec<u8>,
    pub user_id: Option<Vec<u8>>,
    pub region: Option<Vec<u8>>,
    pub city: Option<Vec<u8>>,
    pub override_cohort: Option<Vec<u8>>,
    pub override_token: Option<Vec<u8>>,
    pub random: u32,
}

impl OwnedFacts {
    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            authority: &self.authority,
            path: &self.path,
            user_id: self.user_id.as_deref(),
            region: self.region.as_deref(),
            city: self.city.as_deref(),
            override_cohort: self.override_cohort.as_deref(),
            override_token: self.override_token.as_deref(),
            random: self.random,
            guardrail_tripped: false,
        }
    }
}

/// `count` requests against `config`: mostly known services and cities, with unknown hosts, unknown
/// cities, missing headers, odd letter case, ports and a few overrides mixed in.
pub fn requests(config: &SluiceConfig, count: usize, seed: u64) -> Vec<OwnedFacts> {
    let mut rng = SplitMix64::new(seed);
    let cities: Vec<(&String, &City)> = config.cities.iter().collect();
    (0..count)
        .map(|_| {
            let (city, region) = city_and_region(&cities, &mut rng);
            let (override_cohort, override_token) = if rng.chance(2) {
                let token = if rng.chance(500) {
                    OVERRIDE_TOKEN
                } else {
                    "wrong-token"
                };
                (Some(b"canary".to_vec()), Some(token.as_bytes().to_vec()))
            } else {
                (None, None)
            };
            OwnedFacts {
                authority: authority(&mut rng).into_bytes(),
                path: path(&mut rng).into_bytes(),
                user_id: (!rng.chance(100)).then(|| user_id(&mut rng).into_bytes()),
                region,
                city,
                override_cohort,
                override_token,
                random: rng.next_u64() as u32,
            }
        })
        .collect()
}

fn authority(rng: &mut SplitMix64) -> String {
    match rng.below(100) {
        0..=74 => {
            let service = rng.index(SERVICE_COUNT);
            let mut host = service_authority(service);
            if !host.contains(':') && rng.chance(300) {
                host.push_str(":443"); // matched after stripping the port
            }
            if rng.chance(200) {
                host = host.to_ascii_uppercase();
            }
            host
        }
        75..=94 => format!("www.unknown-{}.test", rng.below(1000)),
        _ => String::new(),
    }
}

fn path(rng: &mut SplitMix64) -> String {
    match rng.below(100) {
        0..=39 => format!("/checkout/cart?item={}", rng.below(100_000)),
        40..=64 => {
            // Every any-authority prefix, the last ones included.
            let any: Vec<usize> = (0..ROLLOUT_COUNT - 1)
                .filter(|&i| is_any_authority(i))
                .collect();
            format!("/feature-{}/page", any[rng.index(any.len())])
        }
        65..=89 => format!("/static/app-{}.js", rng.below(100)),
        _ => "/".to_string(),
    }
}

/// Numeric ids of varied length and UUID-shaped ids.
fn user_id(rng: &mut SplitMix64) -> String {
    if rng.chance(300) {
        let a = rng.next_u64();
        let b = rng.next_u64();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    } else {
        let digits = 1 + rng.below(10) as u32;
        format!("user-{}", rng.below(10u64.pow(digits)))
    }
}

type Bytes = Option<Vec<u8>>;

/// (city header, region header): a known city (sometimes capitalized) usually with its own region,
/// sometimes another or an unknown region, or either header missing.
fn city_and_region(cities: &[(&String, &City)], rng: &mut SplitMix64) -> (Bytes, Bytes) {
    let known = cities[rng.index(cities.len())];
    let city = match rng.below(100) {
        0..=69 => Some(known.0.clone()),
        70..=79 => Some(capitalize(known.0)),
        80..=89 => Some(format!("nowhere-{}", rng.below(1000))),
        _ => None,
    };
    let region = match rng.below(100) {
        0..=59 => Some(known.1.region.clone()),
        60..=69 => Some(REGIONS[rng.index(REGIONS.len())].to_ascii_uppercase()),
        70..=79 => Some("mars-1".to_string()),
        _ => None, // a known city's region stands in
    };
    (city.map(String::into_bytes), region.map(String::into_bytes))
}

fn capitalize(s: &str) -> String {
    let mut out = s.to_string();
    if let Some(first) = out.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    out
}
