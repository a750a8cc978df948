//! `sluice status -o table|json|yaml`: people read the table; scripts read the status objects, exactly as
//! the controller saved them (the same fields in both modes).

use super::shown::Shown;
use super::status::status_report;
use rollout::api::CohortRolloutStatus;
use rollout::Error;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// `{"rollouts": [{"namespace", "name", "status"}]}`: a list, so that Kubernetes' namespace/name and
/// local mode's name read alike; `status` is null before the controller's first round. Fields keep
/// the status' own order (phase first), as `kubectl get -o yaml` shows it.
#[derive(Serialize)]
pub struct StatusDocument<'a> {
    pub rollouts: Vec<StatusItem<'a>>,
}

#[derive(Serialize)]
pub struct StatusItem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub status: Option<&'a CohortRolloutStatus>,
}

pub fn status_document(shown: &[Shown]) -> StatusDocument<'_> {
    StatusDocument {
        rollouts: shown
            .iter()
            .map(|r| StatusItem {
                namespace: r.namespace.as_deref(),
                name: &r.name,
                status: r.status.as_ref(),
            })
            .collect(),
    }
}

/// What `sluice status` prints, ending in a newline.
pub fn status_output(
    shown: &[Shown],
    format: Format,
    with_namespace: bool,
) -> Result<String, Error> {
    match format {
        Format::Table => Ok(status_report(shown, with_namespace)),
        Format::Json => serde_json::to_string_pretty(&status_document(shown))
            .map(|text| text + "\n")
            .map_err(|e| Error::Status(format!("cannot encode status: {e}"))),
        Format::Yaml => serde_yaml::to_string(&status_document(shown))
            .map_err(|e| Error::Status(format!("cannot encode status: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::shown::fixture;
    use serde_json::Value;

    #[test]
    fn json_and_yaml_carry_each_rollouts_status_with_its_last_analysis() {
        let shown = fixture::shown();
        let json: Value =
            serde_json::from_str(&status_output(&shown, Format::Json, false).unwrap()).unwrap();
        let yaml: Value =
            serde_yaml::from_str(&status_output(&shown, Format::Yaml, false).unwrap()).unwrap();
        assert_eq!(json, yaml);
        let shop = &json["rollouts"][1];
        assert_eq!(shop["name"], "shop");
        assert!(shop.get("namespace").is_none(), "{shop}");
        let check = &shop["status"]["lastAnalysis"][0];
        assert_eq!(check["name"], "success-rate");
        assert_eq!(check["value"], 100.0);
        assert_eq!(check["stableValue"], 99.8);
        assert_eq!(check["samples"], 3);
        assert_eq!(check["verdict"], "Inconclusive");
        assert_eq!(shop["status"]["conditions"][0]["reason"], "Holding");
    }

    #[test]
    fn a_rollout_not_seen_yet_has_a_null_status_and_kubernetes_ones_a_namespace() {
        let mut shown = fixture::shown();
        shown[0].status = None;
        shown[0].namespace = Some("shop-ns".into());
        let json: Value =
            serde_json::from_str(&status_output(&shown, Format::Json, true).unwrap()).unwrap();
        assert_eq!(json["rollouts"][0]["status"], Value::Null);
        assert_eq!(json["rollouts"][0]["namespace"], "shop-ns");
    }

    #[test]
    fn the_table_lists_the_rollouts_then_a_block_for_each() {
        let table = status_output(&fixture::shown(), Format::Table, false).unwrap();
        let blocks: Vec<&str> = table.split("\n\n").collect();
        assert_eq!(blocks.len(), 3, "{table}");
        assert!(blocks[0].starts_with("NAME   PHASE"), "{table}");
        assert!(blocks[1].starts_with("cart: Paused"), "{table}");
        assert!(blocks[2].starts_with("shop: Holding"), "{table}");
    }
}
