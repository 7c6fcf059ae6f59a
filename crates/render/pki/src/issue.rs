//! Carrying out a [`Plan`]: kept items are copied byte-identical from the
//! prior assets, the rest are generated.

use time::OffsetDateTime;

use crate::certs::{self, ca_spec, leaf_specs, CaId};
use crate::plan::{
    kubeconfig_specs, leaf_not_after, plan, render_kubeconfig, Action, SERVICE_ACCOUNT_KEY, SERVICE_ACCOUNT_PUB, TOKENS,
};
use crate::{keys, token, Assets, PkiError, PkiParams};

fn copy(out: &mut Assets, prior: &Assets, path: &str) -> Result<(), PkiError> {
    let v = prior
        .get(path)
        .ok_or_else(|| PkiError::Inconsistent(format!("{path} planned as kept but absent")))?;
    out.insert(path.to_owned(), v.clone());
    Ok(())
}

fn get<'a>(out: &'a Assets, path: &str) -> Result<&'a String, PkiError> {
    out.get(path)
        .ok_or_else(|| PkiError::Inconsistent(format!("{path} needed before it was issued")))
}

/// Renders the whole PKI: keeps every prior item that [`plan`] keeps
/// (byte-identical) and (re)issues the rest. Same prior, params and `now`
/// with nothing to issue → the prior assets, byte-identical.
///
/// Certificates are valid from `now - 5 min` ([`certs::CLOCK_SKEW`]); leaves
/// until `now + leaf_validity`, but never past their CA.
///
/// # Errors
/// Params that cannot describe a PKI, or a failure to generate or sign.
pub fn issue(params: &PkiParams, prior: Option<&Assets>, now: OffsetDateTime) -> Result<Assets, PkiError> {
    let empty = Assets::new();
    let prior_assets = prior.unwrap_or(&empty);
    let plan = plan(params, prior, now)?;
    let action = |name: &str| plan.get(name).map(|i| &i.action);
    let mut out = Assets::new();

    // Every new key up front, so slow RSA generation runs in parallel.
    let needed = plan
        .items
        .iter()
        .filter(|i| match (&i.action, i.name.as_str()) {
            (Action::Keep, _) | (Action::Issue { new_key: false, .. }, _) => false,
            (_, "ca") => params.byo_ca.is_none(),
            (_, name) if name.ends_with("bootstrap-token") => false,
            (_, name) => !name.ends_with("-kubeconfig"),
        })
        .count();
    let mut fresh = keys::generate_many(params.key_algorithm, needed)?;
    let mut next_key = move || {
        fresh
            .pop()
            .ok_or_else(|| PkiError::Inconsistent("more keys used than planned".into()))
    };

    for ca in CaId::ALL {
        let spec = ca_spec(ca);
        let (cert_path, key_path) = (spec.cert_path(), spec.key_path());
        match action(spec.name) {
            Some(Action::Keep) => {
                copy(&mut out, prior_assets, &cert_path)?;
                copy(&mut out, prior_assets, &key_path)?;
            }
            _ => match (ca, &params.byo_ca) {
                (CaId::Kube, Some(byo)) => {
                    out.insert(cert_path, byo.cert_pem.clone());
                    out.insert(key_path, byo.key_pem.clone());
                }
                _ => {
                    let renew_in_place = matches!(action(spec.name), Some(Action::Issue { new_key: false, .. }));
                    let key_pem = match (renew_in_place, prior_assets.get(&key_path)) {
                        (true, Some(k)) => k.clone(),
                        _ => next_key()?.serialize_pem(),
                    };
                    let key = keys::load(&key_pem)?;
                    let cert = certs::self_sign_ca(&spec, &key, now, params.ca_validity)?;
                    out.insert(cert_path, cert);
                    out.insert(key_path, key_pem);
                }
            },
        }
    }

    for spec in leaf_specs(params) {
        let (cert_path, key_path) = (spec.cert_path(), spec.key_path());
        if matches!(action(spec.name), Some(Action::Keep)) {
            copy(&mut out, prior_assets, &cert_path)?;
            copy(&mut out, prior_assets, &key_path)?;
            continue;
        }
        let ca = ca_spec(spec.issuer.unwrap_or(CaId::Kube));
        let ca_pem = get(&out, &ca.cert_path())?.clone();
        let ca_key = keys::load(get(&out, &ca.key_path())?)?;
        let ca_not_after = certs::read_cert(&ca.cert_path(), &ca_pem)?.not_after;
        let key = next_key()?;
        let cert = certs::sign_leaf(
            &spec,
            &key,
            params.key_algorithm,
            &ca_pem,
            &ca_key,
            now.saturating_sub(certs::CLOCK_SKEW),
            leaf_not_after(params, now, ca_not_after),
        )?;
        out.insert(cert_path, cert);
        out.insert(key_path, key.serialize_pem());
    }

    if matches!(action("service-account"), Some(Action::Keep)) {
        copy(&mut out, prior_assets, SERVICE_ACCOUNT_KEY)?;
        copy(&mut out, prior_assets, SERVICE_ACCOUNT_PUB)?;
    } else {
        let key = next_key()?;
        out.insert(SERVICE_ACCOUNT_KEY.into(), key.serialize_pem());
        out.insert(SERVICE_ACCOUNT_PUB.into(), key.public_key_pem());
    }

    for (name, path) in TOKENS {
        if matches!(action(name), Some(Action::Keep)) {
            copy(&mut out, prior_assets, path)?;
        } else {
            out.insert(path.into(), token::generate());
        }
    }

    for kc in kubeconfig_specs(params)? {
        if matches!(action(kc.name), Some(Action::Keep)) {
            copy(&mut out, prior_assets, kc.path)?;
        } else {
            let rendered = render_kubeconfig(params, &kc, &out)
                .ok_or_else(|| PkiError::Inconsistent(format!("{}: an embedded asset is missing", kc.path)))?;
            out.insert(kc.path.to_owned(), rendered);
        }
    }
    Ok(out)
}
