//! Every bad input gives its error, with the attribute path and a hint;
//! validate never panics (property test); defaults and derived values.

mod common;

use common::*;
use proptest::prelude::*;
use selfhosted_pki::params::attr;
use selfhosted_pki::{cluster_dns_ip, first_service_ip, parse, server_url, validate, InputError, RawParams};

/// The single error of `r`, asserting its path and that its message contains `hint`.
fn only_error(r: &RawParams, path: &str, hint: &str) -> InputError {
    let errs = validate(r);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = errs.into_iter().next().unwrap();
    assert_eq!(e.path(), path, "{e}");
    assert!(e.message.contains(hint), "{e} lacks {hint:?}");
    assert!(parse(r).is_err());
    e
}

fn with_api(list: &[&str]) -> RawParams {
    raw(list, &["10.0.0.5"])
}

#[test]
fn good_inputs_have_no_errors() {
    assert!(validate(&raw(
        &["api.example.com", "10.0.0.1", "fd00::1"],
        &["etcd-0.example.com"]
    ))
    .is_empty());
    // Unknown values are skipped, never reported.
    assert!(validate(&RawParams::default()).is_empty());
}

#[test]
fn invalid_host_names() {
    only_error(&with_api(&["ok.example", "bad_name.example"]), "api_servers[1]", "'_'");
    only_error(
        &with_api(&["https://api.example.com:6443"]),
        "api_servers[0]",
        "write the host name alone: api.example.com",
    );
    only_error(&with_api(&["*.example.com"]), "api_servers[0]", "wildcard");
    only_error(&with_api(&["API.example.com"]), "api_servers[0]", "api.example.com");
    only_error(&with_api(&["256.1.1.1"]), "api_servers[0]", "not a valid IP address");
    only_error(
        &with_api(&["[fd00::1]"]),
        "api_servers[0]",
        "write the address alone: fd00::1",
    );
    only_error(&with_api(&["a..b"]), "api_servers[0]", "empty label");
    only_error(
        &with_api(&["api.example.com."]),
        "api_servers[0]",
        "write \"api.example.com\"",
    );
    only_error(
        &with_api(&["api.example.com:6443"]),
        "api_servers[0]",
        "api_server_port",
    );
    only_error(&with_api(&[""]), "api_servers[0]", "empty");
    only_error(&with_api(&["-a.example"]), "api_servers[0]", "starts or ends with '-'");
    only_error(
        &with_api(&[&format!("{}.example", "a".repeat(64))]),
        "api_servers[0]",
        "at most 63",
    );
    only_error(&raw(&["a.example"], &["etcd 1"]), "etcd_servers[0]", "' '");
}

#[test]
fn empty_and_duplicate_lists() {
    only_error(&with_api(&[]), "api_servers", "at least one");
    only_error(&raw(&["a.example"], &[]), "etcd_servers", "at least one");
    only_error(
        &with_api(&["a.example", "10.0.0.1", "a.example"]),
        "api_servers[2]",
        "duplicate of api_servers[0]",
    );
    only_error(
        &raw(&["a.example"], &["10.0.0.1", "10.0.0.1"]),
        "etcd_servers[1]",
        "remove it",
    );
    // IPv6 written two ways is the same address.
    only_error(&with_api(&["fd00::1", "fd00:0::1"]), "api_servers[1]", "duplicate");
}

#[test]
fn service_cidr_errors() {
    let cidr = |s: &str| RawParams {
        service_cidr: Some(s.into()),
        ..raw(&["a.example"], &["10.0.0.5"])
    };
    only_error(&cidr("10.3.0.0/33"), "service_cidr", "not a CIDR");
    only_error(&cidr("ten"), "service_cidr", "such as 10.3.0.0/16");
    only_error(
        &cidr("10.3.0.5/16"),
        "service_cidr",
        "write the network address: 10.3.0.0/16",
    );
    only_error(&cidr("10.3.0.0/29"), "service_cidr", "prefix of /28 or shorter");
    only_error(&cidr("10.0.0.0/8"), "service_cidr", "/12 or longer");
    only_error(&cidr("fd00::/125"), "service_cidr", "/124 or shorter");
    only_error(&cidr("fd00::/64"), "service_cidr", "/108 or longer");
    assert!(validate(&cidr("10.3.0.0/28")).is_empty());
}

#[test]
fn numbers_and_names() {
    let base = || raw(&["a.example"], &["10.0.0.5"]);
    only_error(
        &RawParams {
            api_server_port: Some(0),
            ..base()
        },
        "api_server_port",
        "1 to 65535",
    );
    only_error(
        &RawParams {
            api_server_port: Some(70000),
            ..base()
        },
        "api_server_port",
        "1 to 65535",
    );
    only_error(
        &RawParams {
            cluster_name: Some("Prod_1".into()),
            ..base()
        },
        "cluster_name",
        "DNS label",
    );
    only_error(
        &RawParams {
            cluster_name: Some(String::new()),
            ..base()
        },
        "cluster_name",
        "DNS label",
    );
    only_error(
        &RawParams {
            cluster_domain_suffix: Some("cluster..local".into()),
            ..base()
        },
        "cluster_domain_suffix",
        "cluster.local",
    );
    let e = only_error(
        &RawParams {
            key_algorithm: Some("RSA_1024".into()),
            ..base()
        },
        "key_algorithm",
        "ECDSA_P256, RSA_2048, RSA_3072, RSA_4096",
    );
    assert!(e.message.contains("RSA_1024"));
    only_error(
        &RawParams {
            validity_hours: Some(720),
            ..base()
        },
        "validity_hours",
        "not longer than early_renewal_hours (720)",
    );
    only_error(
        &RawParams {
            ca_validity_hours: Some(100),
            ..base()
        },
        "ca_validity_hours",
        "write more than 720 hours",
    );
    only_error(
        &RawParams {
            validity_hours: Some(-5),
            ..base()
        },
        "validity_hours",
        "from 1 to",
    );
    only_error(
        &RawParams {
            early_renewal_hours: Some(-1),
            ..base()
        },
        "early_renewal_hours",
        "from 0 to",
    );
    only_error(
        &RawParams {
            ca_validity_hours: Some(i64::MAX),
            ..base()
        },
        "ca_validity_hours",
        "876600",
    );
    only_error(
        &RawParams {
            admin_organization: Some(String::new()),
            ..base()
        },
        "admin_organization",
        "system:masters",
    );
    // Cross-checks are skipped while a side is unknown.
    assert!(validate(&RawParams {
        validity_hours: Some(10),
        early_renewal_hours: None,
        ..base()
    })
    .is_empty());
}

#[test]
fn parse_reports_missing_required_attributes() {
    let errs = parse(&RawParams::default()).unwrap_err();
    let paths: Vec<String> = errs.iter().map(InputError::path).collect();
    assert_eq!(paths, vec![attr::CLUSTER_NAME, attr::API_SERVERS, attr::ETCD_SERVERS]);
}

#[test]
fn defaults_and_derived_values() {
    let p = default_params();
    assert_eq!(p.api_server_port, 6443);
    assert_eq!(p.service_cidr.to_string(), "10.3.0.0/16");
    assert_eq!(p.cluster_domain_suffix, "cluster.local");
    assert_eq!(p.ca_validity, time::Duration::hours(87_600));
    assert_eq!(p.leaf_validity, time::Duration::hours(8_760));
    assert_eq!(p.early_renewal, time::Duration::hours(720));
    assert_eq!(p.admin_organization, "system:masters");
    assert_eq!(server_url(&p).unwrap(), "https://api.demo.example:6443");
    assert_eq!(first_service_ip(&p.service_cidr).unwrap().to_string(), "10.3.0.1");
    assert_eq!(cluster_dns_ip(&p.service_cidr).unwrap().to_string(), "10.3.0.10");

    let mut r = raw(&["fd00::1"], &["fd00::2"]);
    r.service_cidr = Some("fd00:10::/108".into());
    let p6 = parse(&r).unwrap();
    assert_eq!(server_url(&p6).unwrap(), "https://[fd00::1]:6443");
    assert_eq!(cluster_dns_ip(&p6.service_cidr).unwrap().to_string(), "fd00:10::a");
    // The smallest accepted network still holds the DNS address.
    assert_eq!(
        cluster_dns_ip(&"10.0.0.0/28".parse().unwrap()).unwrap().to_string(),
        "10.0.0.10"
    );
}

#[test]
fn key_algorithm_names_round_trip() {
    for a in selfhosted_pki::KeyAlgorithm::ALL {
        assert_eq!(a.as_str().parse::<selfhosted_pki::KeyAlgorithm>().unwrap(), a);
    }
}

fn opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any::<String>())
}

fn opt_list() -> impl Strategy<Value = Option<Vec<String>>> {
    proptest::option::of(proptest::collection::vec(
        prop_oneof![any::<String>(), "[a-z0-9.:\\[\\]*-]{0,12}"],
        0..4,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn validate_and_parse_never_panic(
        cluster_name in opt_string(),
        api_servers in opt_list(),
        etcd_servers in opt_list(),
        api_server_port in proptest::option::of(any::<i64>()),
        service_cidr in proptest::option::of(prop_oneof![any::<String>(), "[0-9a-f.:]{1,20}/[0-9]{1,3}"]),
        cluster_domain_suffix in opt_string(),
        key_algorithm in opt_string(),
        ca_validity_hours in proptest::option::of(any::<i64>()),
        validity_hours in proptest::option::of(any::<i64>()),
        early_renewal_hours in proptest::option::of(any::<i64>()),
        ca_cert_pem in opt_string(),
        ca_private_key_pem in opt_string(),
        admin_organization in opt_string(),
    ) {
        let r = RawParams {
            cluster_name, api_servers, etcd_servers, api_server_port, service_cidr,
            cluster_domain_suffix, key_algorithm, ca_validity_hours, validity_hours,
            early_renewal_hours, ca_cert_pem, ca_private_key_pem, admin_organization,
        };
        let errs = validate(&r);
        for e in &errs {
            prop_assert!(!e.message.is_empty());
        }
        if let Ok(p) = parse(&r) {
            prop_assert!(errs.is_empty());
            prop_assert!(server_url(&p).is_ok());
            prop_assert!(cluster_dns_ip(&p.service_cidr).is_some());
        }
    }
}

#[test]
fn suggestions_are_valid_themselves_and_a_ca_outlives_its_certificates() {
    let e = only_error(
        &with_api(&["Bad_Name..example"]),
        "api_servers[0]",
        "not a valid DNS name",
    );
    assert!(!e.message.contains("bad_name..example"), "no invalid suggestion: {e}");
    let mut r = with_api(&["api.example.com"]);
    r.ca_validity_hours = Some(100);
    r.validity_hours = Some(200);
    r.early_renewal_hours = Some(10);
    only_error(&r, "ca_validity_hours", "shorter than validity_hours (200)");
}
