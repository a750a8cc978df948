//! Which namespaces may write a WasmPlugin's (or TrafficExtension's) sluice config: its own, and those
//! its owner lists.

use crate::api::ConfigKind;
use crate::error::{Error, Result};

/// On a WasmPlugin or TrafficExtension: the namespaces (comma-separated, or `*` for every one) whose CohortRollouts may
/// write entries into its `pluginConfig`, besides its own namespace.
pub const ALLOWED_NAMESPACES_ANNOTATION: &str = "sluice.dev/allowed-namespaces";

/// Longest annotation value quoted back in an error.
const QUOTED_MAX: usize = 120;

/// A CohortRollout of `rollout_namespace` may write the WasmPlugin of `plugin_namespace` when it is the
/// same namespace or the plugin's [`ALLOWED_NAMESPACES_ANNOTATION`] (`allowed`) lists it.
pub fn check_namespace_allowed(
    plugin_namespace: &str,
    allowed: Option<&str>,
    rollout_namespace: &str,
) -> Result<()> {
    check_kind_namespace_allowed(
        ConfigKind::WasmPlugin,
        plugin_namespace,
        allowed,
        rollout_namespace,
    )
}

/// [`check_namespace_allowed`] for a resource of `kind`; the error names its field and kind.
pub fn check_kind_namespace_allowed(
    kind: ConfigKind,
    plugin_namespace: &str,
    allowed: Option<&str>,
    rollout_namespace: &str,
) -> Result<()> {
    if plugin_namespace == rollout_namespace {
        return Ok(());
    }
    let listed = allowed.is_some_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|ns| ns == "*" || ns == rollout_namespace)
    });
    if listed {
        return Ok(());
    }
    let now = match allowed {
        Some(list) if list.chars().count() > QUOTED_MAX => {
            let cut: String = list.chars().take(QUOTED_MAX).collect();
            format!("is {cut:?}...")
        }
        Some(list) => format!("is {list:?}"),
        None => "is not set".to_string(),
    };
    let kind_name = kind.kind();
    Err(Error::invalid(
        format!("{}.namespace", kind.field()),
        plugin_namespace,
        format!(
            "the {kind_name}'s namespace does not allow CohortRollouts of namespace {rollout_namespace}: \
             its owner may list it in the {kind_name} annotation {ALLOWED_NAMESPACES_ANNOTATION} \
             (which {now})"
        ),
    ))
}
