use super::*;
use clap::CommandFactory;

fn parse(text: &str) -> Result<ConfigFile, String> {
    let command = crate::cli::Cli::command();
    let run = command.find_subcommand("run").unwrap();
    ConfigFile::parse(Path::new("test.toml"), text, run).map_err(|errors| {
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.join("\n")
    })
}

/// `text` parsed with an environment of `pairs` only.
fn parse_with(text: &str, pairs: &[(&str, &str)]) -> Result<ConfigFile, Vec<String>> {
    let command = crate::cli::Cli::command();
    let run = command.find_subcommand("run").unwrap();
    let lookup = |name: &str| {
        pairs
            .iter()
            .find(|(set, _)| *set == name)
            .map(|(_, value)| OsString::from(value))
    };
    ConfigFile::parse_in(Path::new("test.toml"), text, run, &lookup)
}

#[test]
fn variables_are_expanded_before_the_tables_become_specs() {
    let config = parse_with(
        "[[input]]\nkind = \"udp\"\naddress = \"${ADDR}\"\nsockets = 2\n\
         [[output]]\nkind = \"file\"\npath = \"${DIR:-/var/log/ringway}/out.ndjson\"\n\
         where = \"price > '$$5'\"\n",
        &[("ADDR", "0.0.0.0:514")],
    )
    .unwrap();
    assert_eq!(config.inputs, ["udp:0.0.0.0:514,sockets=2"]);
    assert_eq!(config.outputs, ["file:/var/log/ringway/out.ndjson"]);
    assert_eq!(config.output_where, [Some("price > '$5'".to_string())]);
}

#[test]
fn a_kafka_table_takes_tls_and_a_sasl_login_with_the_password_from_the_environment() {
    let config = parse_with(
        "[[output]]\nkind = \"kafka\"\nbrokers = [\"k1:9093\"]\ntopic = \"logs\"\nkey = \"host\"\n\
         tls = true\nca = \"/etc/ringway/ca.pem\"\ncert = \"/c.pem\"\ntls_key = \"/k.pem\"\n\
         sasl = \"scram-sha-256\"\nusername = \"ringway\"\npassword = \"${KAFKA_PASSWORD}\"\n",
        &[("KAFKA_PASSWORD", "s3cr,et%")],
    )
    .unwrap();
    assert_eq!(
        config.outputs,
        [
            "kafka:k1:9093/logs,key=host,ca=/etc/ringway/ca.pem,cert=/c.pem,tls_key=/k.pem,sasl=scram-sha-256,tls,username=ringway,password=s3cr%2Cet%25"
        ]
    );
    let output = crate::config::parse_output_spec(&config.outputs[0]).unwrap();
    let crate::config::OutputKind::Kafka(target) = output.kind else {
        panic!();
    };
    assert_eq!(target.sasl.unwrap().password, "s3cr,et%");
    assert_eq!(target.key.as_deref(), Some("host"));
    assert_eq!(target.tls.unwrap().key.unwrap().to_str(), Some("/k.pem"));
    // The message key is `key`; a TLS option without tls is refused.
    let errors = parse_with(
        "[[output]]\nkind = \"kafka\"\nbrokers = \"k1:9093\"\ntopic = \"logs\"\ntls_key = \"/k.pem\"\ncert = \"/c.pem\"\n",
        &[],
    )
    .unwrap_err();
    assert!(errors[0].contains("need tls"), "{errors:?}");
}

#[test]
fn an_unset_variable_is_an_error_naming_the_file_the_key_and_the_variable() {
    let errors = parse_with(
        "data_dir = \"${STATE}\"\n[[output]]\nkind = \"otlp\"\nurl = \"${URL}\"\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for (key, name) in [
        ("key 'data_dir'", "STATE"),
        ("[[output]] #1: key 'url'", "URL"),
    ] {
        assert!(
            errors
                .iter()
                .any(|error| error.starts_with("config test.toml: ")
                    && error.contains(&format!("{key}: variable {name} is not set"))
                    && !error.contains('\n')),
            "{key}: {errors:?}"
        );
    }
}

#[test]
fn an_error_about_a_value_from_the_environment_shows_its_reference() {
    let secret = "hunter2-secret";
    // A table's value, refused while the table becomes a SPEC.
    let errors = parse_with(
        "[[input]]\nkind = \"udp\"\naddress = \"${ADDR}\"\n",
        &[("ADDR", &format!("{secret},x"))],
    )
    .unwrap_err();
    assert!(
        errors.len() == 1 && errors[0].contains("'${ADDR}'") && !errors[0].contains(secret),
        "{errors:?}"
    );
    // A scalar's value, refused by its flag's parser.
    let command = crate::cli::Cli::command();
    let run = command.find_subcommand("run").unwrap();
    let mut config = parse_with("max_line = \"${MAX}\"\n", &[("MAX", secret)]).unwrap();
    let errors = config.arguments(run, |_| false).unwrap_err();
    assert!(
        errors.len() == 1
            && errors[0].contains("key 'max_line'")
            && errors[0].contains("${MAX}")
            && !errors[0].contains(secret),
        "{errors:?}"
    );
    assert_eq!(
        config.redact(&format!("--max-line={secret}")),
        "--max-line=${MAX}"
    );
}

#[test]
fn tables_become_the_specs_of_the_command_line_with_sql_and_where_beside_them() {
    let config = parse(
        r#"
        [[input]]
        kind = "file"
        path = "/var/log/app/*.log"
        format = "json"
        from = "end"
        sql = "SELECT a, b FROM logs WHERE c IN ('x', 'y')"
        [[input]]
        kind = "udp"
        address = "0.0.0.0:514"
        format = "syslog"
        rcvbuf = "32MiB"
        sockets = 2
        [[input]]
        kind = "otlp"
        address = "[::1]:4318"
        auth_token_file = "/etc/ringway/otlp-tokens"
        [[input]]
        kind = "stdin"
        format = "json"
        [[input]]
        kind = "file"
        path = "/var/log/pods/*/*/*.log"
        format = "cri"
        multiline = 'start:^\d{1,4}-'
        json = "merge"
        k8s = false
        [[input]]
        kind = "tcp"
        address = "0.0.0.0:6514"
        format = "syslog"
        tls = true
        cert = "/etc/ringway/tls/cert.pem"
        key = "/etc/ringway/tls/key.pem"
        client_ca = "/etc/ringway/tls/clients-ca.pem"
        [[output]]
        kind = "otlp"
        url = "http://collector:4318/v1/logs"
        gzip = true
        [[output]]
        kind = "tcp"
        address = "127.0.0.1:5170"
        [[output]]
        kind = "null"
        where = "level = 'error'"
        "#,
    )
    .unwrap();
    assert_eq!(
        config.inputs,
        [
            "file:/var/log/app/*.log,format=json,from=end",
            "udp:0.0.0.0:514,format=syslog,rcvbuf=32MiB,sockets=2",
            "otlp:[::1]:4318,auth_token_file=/etc/ringway/otlp-tokens",
            "stdin,format=json",
            "file:/var/log/pods/*/*/*.log,format=cri,k8s=false,json=merge,multiline=start:^\\d{1,4}-",
            "tcp:0.0.0.0:6514,format=syslog,tls,cert=/etc/ringway/tls/cert.pem,key=/etc/ringway/tls/key.pem,client_ca=/etc/ringway/tls/clients-ca.pem",
        ]
    );
    assert_eq!(
        config.outputs,
        [
            "otlp:http://collector:4318/v1/logs,gzip",
            "tcp:127.0.0.1:5170",
            "null"
        ]
    );
    // A query and a condition have commas, which a SPEC cannot carry.
    assert_eq!(
        config.input_sql,
        [
            Some("SELECT a, b FROM logs WHERE c IN ('x', 'y')".to_string()),
            None,
            None,
            None,
            None,
            None
        ]
    );
    assert_eq!(
        config.output_where,
        [None, None, Some("level = 'error'".to_string())]
    );
}

#[test]
fn where_is_a_string_key_of_output_tables_only() {
    let error = parse("[[output]]\nkind = \"null\"\nwhere = 3").unwrap_err();
    assert!(error.contains("'where' must be a string"), "{error}");
    // Routes are the tables' keys, not a scalar key.
    let error = parse("where = \"1=true\"").unwrap_err();
    assert!(error.contains("unknown key 'where'"), "{error}");
}

#[test]
fn scalar_keys_become_flags_unless_given_on_the_command_line() {
    let command = crate::cli::Cli::command();
    let run = command.find_subcommand("run").unwrap();
    let mut config = parse(
        "max_line = \"2MiB\"\noutput_workers = 3\nsqpoll = true\nfsync = false\ncpus = [0, 2]\n",
    )
    .unwrap();
    let arguments = config.arguments(run, |id| id == "output_workers").unwrap();
    assert_eq!(arguments, ["--cpus=0,2", "--max-line=2MiB", "--sqpoll"]);
    assert!(config.keys().all(|(key, _)| key != "output_workers"));
}

#[test]
fn every_error_in_a_file_is_reported() {
    let command = crate::cli::Cli::command();
    let run = command.find_subcommand("run").unwrap();
    let errors = ConfigFile::parse(
        Path::new("test.toml"),
        "colour = 1\nshape = 2\n[[input]]\nkind = \"pigeon\"\n[[output]]\nkind = \"file\"\n",
        run,
    )
    .unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:?}");
    for key in ["colour", "shape", "[[input]] #1", "[[output]] #1"] {
        assert!(
            errors.iter().any(|error| error.contains(key)),
            "{key}: {errors:?}"
        );
    }
    let mut config = ConfigFile::parse(
        Path::new("test.toml"),
        "max_line = \"8XB\"\nbatch_linger = \"soon\"\nsqpoll = 1\n",
        run,
    )
    .unwrap();
    let errors = config.arguments(run, |_| false).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    for (text, key) in [
        ("max-line = \"1MiB\"", "max-line"),
        ("inputs = 1", "inputs"),
        ("config = \"x\"", "config"),
        ("input = \"file:/x\"", "input"),
        ("[[input]]\nkind = \"file\"\npath = 3", "path"),
        ("[[input]]\nkind = \"file\"\npth = \"/x\"", "pth"),
        ("[[output]]\nkind = \"null\"\nsql = \"x\"", "sql"),
        (
            "[[input]]\nkind = \"udp\"\naddress = \"1.2.3.4:5\"\nsockets = 65",
            "sockets",
        ),
        (
            "[[output]]\nkind = \"file\"\npath = \"/x\"\ngzip = true",
            "gzip",
        ),
        ("[[output]]\nkind = \"http\"\nurl = \"http://h/,x\"", "url"),
        ("[[output]]\nurl = \"http://h/\"", "kind"),
        (
            "[[input]]\nkind = \"udp\"\naddress = \"1.2.3.4:5\"\ntls = true",
            "tls",
        ),
        (
            "[[input]]\nkind = \"tcp\"\naddress = \"1.2.3.4:5\"\ntls = \"yes\"",
            "tls",
        ),
        (
            "[[input]]\nkind = \"file\"\npath = \"/x\"\ncert = \"/c.pem\"",
            "cert",
        ),
    ] {
        let error = parse(text).unwrap_err();
        assert!(
            error.contains(&format!("'{key}'")) || error.contains(&format!("`{key}`")),
            "{text}: {error}"
        );
        assert!(
            error.contains("test.toml") && !error.contains('\n'),
            "{error}"
        );
    }
}
