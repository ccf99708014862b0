use super::*;

#[test]
fn sizes_take_decimal_and_binary_units_in_any_case() {
    for (text, bytes) in [
        ("512", 512),
        ("512B", 512),
        ("512b", 512),
        ("1KB", 1_000),
        ("1kb", 1_000),
        ("1kB", 1_000),
        ("1MB", 1_000_000),
        ("1mb", 1_000_000),
        ("2GB", 2_000_000_000),
        ("64KiB", 64 << 10),
        ("64kib", 64 << 10),
        ("8MiB", 8 << 20),
        ("8mib", 8 << 20),
        ("8MIB", 8 << 20),
        ("1GiB", 1 << 30),
        ("8 MiB", 8 << 20),
        (" 8MiB ", 8 << 20),
        ("1.5MiB", 3 << 19),
        ("1.5MB", 1_500_000),
        ("0.5KiB", 512),
        // Rounded down to whole bytes.
        ("1.0001KiB", 1024),
        ("0.3333KB", 333),
        ("0", 0),
    ] {
        assert_eq!(parse_size(text), Ok(bytes), "{text}");
    }
}

#[test]
fn sizes_refuse_ambiguous_units_with_both_spellings() {
    for (text, binary, decimal) in [
        ("1M", "1MiB", "1MB"),
        ("1m", "1MiB", "1MB"),
        ("4k", "4KiB", "4KB"),
        ("4K", "4KiB", "4KB"),
        ("2G", "2GiB", "2GB"),
        ("1.5g", "1.5GiB", "1.5GB"),
    ] {
        let error = parse_size(text).unwrap_err();
        assert!(
            error.contains("ambiguous") && error.contains(binary) && error.contains(decimal),
            "{text}: {error}"
        );
    }
}

#[test]
fn sizes_refuse_what_is_not_a_size() {
    for text in [
        "",
        "MiB",
        "8XB",
        "-5",
        "1.5MiB!",
        "1.",
        ".5MiB",
        "1.2.3KB",
        "1.5",
        "1.5B",
        "1TB",
        "99999999999999999999GiB",
        "18446744073709551616",
    ] {
        assert!(parse_size(text).is_err(), "{text}");
    }
}

#[test]
fn durations_parse_with_units_and_bare_seconds() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
    assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert!(parse_duration("5parsecs").is_err());
    assert!(parse_duration("-1").is_err());
    assert!(parse_duration("").is_err());
    assert!(parse_duration("s").is_err());
}

#[test]
fn durations_format_in_the_largest_whole_unit_and_parse_back() {
    for (text, shown) in [
        ("0", "0s"),
        ("10", "10s"),
        ("90s", "90s"),
        ("60s", "1m"),
        ("120", "2m"),
        ("3600", "1h"),
        ("90m", "90m"),
        ("1.5s", "1500ms"),
        ("250ms", "250ms"),
        ("0.0005", "500us"),
    ] {
        let duration = parse_duration(text).unwrap();
        assert_eq!(format_duration(duration), shown, "{text}");
        assert_eq!(parse_duration(shown), Ok(duration), "{shown}");
    }
}

#[test]
fn cpu_lists_expand_ranges() {
    assert_eq!(parse_cpu_list("0"), Ok(CpuList(vec![0])));
    assert_eq!(parse_cpu_list("0,1"), Ok(CpuList(vec![0, 1])));
    assert_eq!(parse_cpu_list("0-1"), Ok(CpuList(vec![0, 1])));
    assert_eq!(parse_cpu_list("0,2-3"), Ok(CpuList(vec![0, 2, 3])));
    assert_eq!(parse_cpu_list("999"), Ok(CpuList(vec![999])));
    for bad in ["", "0-", "3-1", "a", "0,,1", "0-100000", "-1"] {
        assert!(parse_cpu_list(bad).is_err(), "{bad}");
    }
}

#[test]
fn listen_addresses_say_what_is_wrong() {
    assert_eq!(
        parse_listen_address("127.0.0.1:5514", 5514),
        Ok("127.0.0.1:5514".parse().unwrap())
    );
    assert_eq!(
        parse_listen_address("[::1]:0", 5514),
        Ok("[::1]:0".parse().unwrap())
    );
    for (target, says) in [
        ("localhost:5599", "host name"),
        ("syslog.example.org:514", "host name"),
        (":99999", "port 99999 is out of range"),
        ("127.0.0.1:99999", "port 99999 is out of range"),
        ("127.0.0.1:http", "not a number"),
        ("127.0.0.1", "not ADDRESS:PORT"),
        ("::1:5514", "brackets"),
        ("[::g]:5514", "not an IPv6 address"),
        ("1.2.3:5514", "not an IP address"),
        (":5514", "no address"),
    ] {
        let error = parse_listen_address(target, 5514).unwrap_err();
        assert!(error.contains(says), "{target}: {error}");
        assert!(error.contains(target), "{target}: {error}");
    }
}

/// The global flags' defaults (raw lines from the beginning; no TLS files).
fn plain_defaults() -> InputDefaults {
    InputDefaults {
        format: Format::Raw,
        from: StartFrom::Beginning,
        udp_rcvbuf_bytes: 8 << 20,
        udp_sockets: 1,
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
    }
}

#[test]
fn container_formats_take_k8s_and_read_files_only() {
    let defaults = plain_defaults();
    let cri = parse_input_spec("file:/var/log/pods/*/*/*.log,format=cri", &defaults).unwrap();
    assert_eq!((cri.format, cri.k8s), (Format::Cri, true));
    let off = parse_input_spec("file:/a.log,format=cri,k8s=false", &defaults).unwrap();
    assert!(!off.k8s);
    let docker = parse_input_spec("file:/a.log,format=docker", &defaults).unwrap();
    assert_eq!((docker.format, docker.k8s), (Format::Docker, false));
    let on = parse_input_spec("file:/a.log,format=docker,k8s=true", &defaults).unwrap();
    assert!(on.k8s);
    assert!(!parse_input_spec("file:/a.log", &defaults).unwrap().k8s);
    let auto = parse_input_spec("file:/a.log,format=auto", &defaults).unwrap();
    assert_eq!((auto.format, auto.k8s), (Format::Auto, false));
    assert!(
        parse_input_spec("file:/a.log,format=auto,k8s=true", &defaults)
            .unwrap()
            .k8s
    );
    let merge = parse_input_spec("file:/a.log,format=docker,json=merge", &defaults).unwrap();
    assert!(merge.merge_json);
    assert!(!cri.merge_json);
    for refused in [
        "file:/a.log,json=merge",
        "file:/a.log,format=cri,json=parse",
        "udp:127.0.0.1:5514,format=auto",
        "stdin,format=auto",
        "file:/a.log,format=cri,k8s=yes",
        "udp:127.0.0.1:5514,format=cri",
        "tcp:127.0.0.1:6514,format=docker",
        "udp:127.0.0.1:5514,k8s=true",
        "file:/a.log,k8s=true",
        "file:/a.log,format=json,k8s=true",
        "stdin,format=cri",
    ] {
        assert!(parse_input_spec(refused, &defaults).is_err(), "{refused}");
    }
}

#[test]
fn multiline_comes_last_and_takes_the_rest_of_the_spec() {
    use crate::config::MultilineRule;
    let defaults = plain_defaults();
    let spec = parse_input_spec(
        "file:/a.log,format=cri,from=end,multiline=start:^\\d{1,4},x",
        &defaults,
    )
    .unwrap();
    assert_eq!(
        (spec.format, spec.from, spec.multiline),
        (
            Format::Cri,
            StartFrom::End,
            Some(MultilineRule::Start("^\\d{1,4},x".to_string()))
        )
    );
    let java = parse_input_spec("file:/a.log,multiline=java", &defaults).unwrap();
    assert_eq!(java.multiline, Some(MultilineRule::Java));
    assert_eq!(
        parse_input_spec("file:/a.log", &defaults)
            .unwrap()
            .multiline,
        None
    );
    for refused in [
        "file:/a.log,multiline=start:(",
        "file:/a.log,multiline=",
        "file:/a.log,format=cri,multiline=java,k8s=false",
        "file:/a.log,format=syslog,multiline=go",
        "tcp:127.0.0.1:6514,multiline=go",
        "stdin,multiline=go",
    ] {
        assert!(parse_input_spec(refused, &defaults).is_err(), "{refused}");
    }
}

#[test]
fn every_input_but_stdin_takes_source_which_is_off_by_default() {
    let defaults = plain_defaults();
    for spec in [
        "file:/a.log",
        "udp:127.0.0.1:5514",
        "tcp:[::1]:6514",
        "otlp:127.0.0.1:4318",
    ] {
        assert!(!parse_input_spec(spec, &defaults).unwrap().source, "{spec}");
        let on = parse_input_spec(&format!("{spec},source=true"), &defaults).unwrap();
        assert!(on.source, "{spec}");
        let off = parse_input_spec(&format!("{spec},source=false"), &defaults).unwrap();
        assert!(!off.source, "{spec}");
    }
    let error = parse_input_spec("udp:127.0.0.1:5514,source=maybe", &defaults).unwrap_err();
    assert_eq!(
        error,
        "input 'udp:127.0.0.1:5514,source=maybe': source must be true or false, not 'maybe'"
    );
    assert!(parse_input_spec("stdin,source=true", &defaults).is_err());
}

#[test]
fn input_spec_keys_override_global_defaults() {
    let defaults = plain_defaults();
    let spec = parse_input_spec("file:/var/log/*.log,format=json,from=end", &defaults).unwrap();
    assert_eq!(spec.file_pattern(), Some("/var/log/*.log"));
    assert_eq!(spec.format, Format::Json);
    assert_eq!(spec.from, StartFrom::End);
    let json = InputDefaults {
        format: Format::Json,
        ..defaults.clone()
    };
    assert_eq!(
        parse_input_spec("file:/a.log", &json).unwrap().format,
        Format::Json
    );
    assert!(parse_input_spec("bogus", &defaults).is_err());
    assert!(parse_input_spec("file:/a,colour=red", &defaults).is_err());
    let udp = parse_input_spec(
        "udp:[::1]:5514,format=syslog,rcvbuf=16MiB,sockets=2",
        &defaults,
    )
    .unwrap();
    assert_eq!(udp.format, Format::Syslog);
    assert_eq!(
        udp.kind,
        InputKind::Udp {
            address: "[::1]:5514".parse().unwrap(),
            rcvbuf_bytes: 16 << 20,
            sockets: 2
        }
    );
    assert!(parse_input_spec("udp:127.0.0.1", &defaults).is_err());
    assert!(parse_input_spec("udp:127.0.0.1:5514,from=end", &defaults).is_err());
    assert!(parse_input_spec("udp:127.0.0.1:5514,sockets=0", &defaults).is_err());
    let stdin = parse_input_spec("stdin,format=json", &defaults).unwrap();
    assert_eq!(stdin.kind, InputKind::Stdin);
    assert_eq!(stdin.format, Format::Json);
    assert!(stdin.reaches_eof() && stdin.file_pattern().is_none());
    assert_eq!(
        parse_input_spec("stdin", &defaults).unwrap().format,
        Format::Raw
    );
    for bad in ["stdin,from=end", "stdin:x", "stdin,json", "file:/dev/stdin"] {
        assert!(parse_input_spec(bad, &defaults).is_err(), "{bad}");
    }
}

#[test]
fn output_specs_parse() {
    assert_eq!(parse_output_spec("null").unwrap().kind, OutputKind::Null);
    assert_eq!(
        parse_output_spec("stdout").unwrap().kind,
        OutputKind::Stdout
    );
    assert_eq!(
        parse_output_spec("file:/tmp/x").unwrap().kind,
        OutputKind::File("/tmp/x".into())
    );
    assert!(parse_output_spec("ftp://x").is_err());
    assert_eq!(
        parse_output_spec("otlp:http://collector:4318/v1/logs,gzip")
            .unwrap()
            .kind,
        OutputKind::Otlp(HttpTarget {
            url: "http://collector:4318/v1/logs".into(),
            host: "collector".into(),
            port: 4318,
            path: "/v1/logs".into(),
            gzip: true,
            tls: None,
        })
    );
    let http = |spec| match parse_output_spec(spec).unwrap().kind {
        OutputKind::Http(target) => target,
        other => panic!("{other:?}"),
    };
    assert_eq!(http("http://127.0.0.1:8080/ingest").path, "/ingest");
    assert_eq!(http("http:http://[::1]/x?y=1").host, "::1");
    assert_eq!(http("http:http://[::1]/x?y=1").port, 80);
    assert!(http("http://h:1,gzip").gzip);
    assert_eq!(
        parse_output_spec("tcp:[::1]:5170").unwrap().kind,
        OutputKind::Tcp {
            host: "::1".into(),
            port: 5170,
            tls: None,
        }
    );
    for bad in [
        "otlp:ftp://x",
        "otlp:x:4318",
        "tcp:nohost",
        "tcp::5170",
        "tcp:h:0",
        "http://:80/",
        "http://h:99999/",
    ] {
        assert!(parse_output_spec(bad).is_err(), "{bad}");
    }
    for (bad, says) in [
        ("tcp:h:99999", "port 99999 is out of range"),
        ("http://h:70000/", "port 70000 is out of range"),
        ("tcp:h:0", "port 0"),
        ("tcp:nohost", "not HOST:PORT"),
    ] {
        let error = parse_output_spec(bad).unwrap_err();
        assert!(error.contains(says), "{bad}: {error}");
    }
}

#[test]
fn kafka_output_specs_parse() {
    let kafka = |spec: &str| match parse_output_spec(spec).unwrap().kind {
        OutputKind::Kafka(target) => target,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        kafka("kafka:127.0.0.1:9092/logs"),
        KafkaTarget {
            brokers: vec!["127.0.0.1:9092".into()],
            topic: "logs".into(),
            compression: KafkaCompression::Lz4,
            key: None,
            acks_all: true,
            tls: None,
            sasl: None,
        }
    );
    let all = kafka("kafka:k1:9092,[::1]:9093/app.logs-v_2,compression=zstd,key=host,acks=1");
    assert_eq!(all.brokers, ["k1:9092", "[::1]:9093"]);
    assert_eq!(all.topic, "app.logs-v_2");
    assert_eq!(all.compression, KafkaCompression::Zstd);
    assert_eq!(all.key.as_deref(), Some("host"));
    assert!(!all.acks_all);
    for codec in ["none", "gzip", "lz4", "zstd"] {
        let target = kafka(&format!("kafka:h:1/t,compression={codec}"));
        assert_eq!(target.compression.name(), codec);
    }
    for (bad, says) in [
        ("kafka:h:9092", "no topic"),
        ("kafka:h:9092/", "not a Kafka topic name"),
        ("kafka:h:9092/a b", "not a Kafka topic name"),
        ("kafka:h:9092/..", "not a Kafka topic name"),
        ("kafka:h/t", "broker 'h'"),
        ("kafka:h:0/t", "port 0"),
        ("kafka:h:1,/t", "broker ''"),
        ("kafka:h:1/t,compression=snappy", "none, gzip, lz4 or zstd"),
        ("kafka:h:1/t,acks=0", "acks must be all or 1"),
        ("kafka:h:1/t,key=", "key= needs a field name"),
        ("kafka:h:1/t,linger=5", "unknown option 'linger'"),
    ] {
        let error = parse_output_spec(bad).unwrap_err();
        assert!(error.contains(says), "{bad}: {error}");
    }
    let topic = "t".repeat(250);
    assert!(parse_output_spec(&format!("kafka:h:1/{topic}")).is_err());
}

#[test]
fn kafka_tls_and_sasl_options_parse_and_the_password_is_never_in_the_name() {
    let output = parse_output_spec(
        "kafka:k1:9093/logs,key=host,tls,ca=/ca.pem,cert=/c.pem,tls_key=/k.pem,sasl=SCRAM-SHA-512,username=ringway,password=p%2Cw%25d%41",
    )
    .unwrap();
    let OutputKind::Kafka(target) = &output.kind else {
        panic!("{:?}", output.kind);
    };
    assert_eq!(target.key.as_deref(), Some("host"));
    assert_eq!(
        target.tls,
        Some(TlsClientOptions {
            ca: Some("/ca.pem".into()),
            cert: Some("/c.pem".into()),
            key: Some("/k.pem".into()),
            server_name: None,
            insecure_skip_verify: false,
        })
    );
    let sasl = target.sasl.as_ref().unwrap();
    assert_eq!(
        sasl.mechanism,
        crate::config::KafkaSaslMechanism::ScramSha512
    );
    assert_eq!(sasl.username, "ringway");
    // %2C a comma, %25 a percent sign, any other % itself.
    assert_eq!(sasl.password, "p,w%d%41");
    assert_eq!(
        crate::config::percent_encoded(&sasl.password),
        "p%2Cw%25d%2541"
    );
    assert!(!output.name.contains("p%2Cw"), "{}", output.name);
    assert!(
        output.name.ends_with(",password=<redacted>"),
        "{}",
        output.name
    );
    assert!(!format!("{target:?}").contains("p,w"));
    // TLS without files: the system's CAs; SASL without TLS.
    let plain = parse_output_spec("kafka:k1:9092/logs,sasl=plain,username=u,password=s").unwrap();
    let OutputKind::Kafka(target) = plain.kind else {
        panic!();
    };
    assert!(target.tls.is_none());
    assert_eq!(
        target.sasl.unwrap().mechanism,
        crate::config::KafkaSaslMechanism::Plain
    );
    let bare = parse_output_spec("kafka:k1:9093/logs,tls").unwrap();
    assert_eq!(bare.kind.tls(), Some(&TlsClientOptions::default()));
    for (bad, says) in [
        ("kafka:h:1/t,ca=/ca.pem", "need tls"),
        (
            "kafka:h:1/t,tls,cert=/c.pem",
            "both cert=FILE and tls_key=FILE",
        ),
        (
            "kafka:h:1/t,tls,tls_key=/k.pem",
            "both cert=FILE and tls_key=FILE",
        ),
        (
            "kafka:h:1/t,tls,ca=/x,insecure_skip_verify=true",
            "one or the other",
        ),
        ("kafka:h:1/t,tls,server_name=b1", "no server_name="),
        (
            "kafka:h:1/t,sasl=gssapi,username=u,password=p",
            "plain, scram-sha-256 or scram-sha-512",
        ),
        (
            "kafka:h:1/t,sasl=plain,username=u",
            "needs username= and password=",
        ),
        ("kafka:h:1/t,username=u,password=secret", "need sasl="),
        (
            "kafka:h:1/t,sasl=plain,username=u,password=",
            "password= needs a value",
        ),
    ] {
        let error = parse_output_spec(bad).unwrap_err();
        assert!(error.contains(says), "{bad}: {error}");
        assert!(!error.contains("secret"), "{bad}: {error}");
    }
}

#[test]
fn tcp_tls_takes_its_files_from_its_keys_or_the_global_flags() {
    let defaults = InputDefaults {
        tls_cert: Some("/etc/global.crt".into()),
        tls_key: Some("/etc/global.key".into()),
        ..plain_defaults()
    };
    let files = |cert: &str, key: &str| {
        Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        })
    };
    let tls_of =
        |spec: &str, defaults: &InputDefaults| match parse_input_spec(spec, defaults).unwrap().kind
        {
            InputKind::Tcp { tls, .. } => tls,
            other => panic!("{spec}: {other:?}"),
        };
    assert_eq!(tls_of("tcp:127.0.0.1:6514", &defaults), None);
    assert_eq!(
        tls_of("tcp:127.0.0.1:6514,tls", &defaults),
        files("/etc/global.crt", "/etc/global.key")
    );
    assert_eq!(
        tls_of(
            "tcp:127.0.0.1:6514,tls,cert=/a.crt,format=syslog",
            &defaults
        ),
        files("/a.crt", "/etc/global.key")
    );
    assert_eq!(
        tls_of("tcp:127.0.0.1:6514,key=/a.key,tls,cert=/a.crt", &defaults),
        files("/a.crt", "/a.key")
    );
    // The client CA: its own key wins over --tls-client-ca, which every
    // other ,tls input takes; neither: no client certificate asked for.
    let mutual = InputDefaults {
        tls_client_ca: Some("/etc/clients-ca.pem".into()),
        ..defaults.clone()
    };
    let with_ca = |ca: &str| {
        Some(TlsFiles {
            client_ca: Some(ca.into()),
            ..files("/etc/global.crt", "/etc/global.key").unwrap()
        })
    };
    assert_eq!(
        tls_of("tcp:127.0.0.1:6514,tls", &mutual),
        with_ca("/etc/clients-ca.pem")
    );
    assert_eq!(
        tls_of("tcp:127.0.0.1:6514,tls,client_ca=/own-ca.pem", &mutual),
        with_ca("/own-ca.pem")
    );
    assert_eq!(
        tls_of("tcp:127.0.0.1:6514,tls,client_ca=/own-ca.pem", &defaults),
        with_ca("/own-ca.pem")
    );
    assert_eq!(tls_of("tcp:127.0.0.1:6514", &mutual), None);
    // OTLP over HTTPS takes the same keys and flags.
    match parse_input_spec("otlp:127.0.0.1:4318,tls,client_ca=/own-ca.pem", &mutual)
        .unwrap()
        .kind
    {
        InputKind::Otlp { tls, .. } => assert_eq!(tls, with_ca("/own-ca.pem")),
        other => panic!("{other:?}"),
    }
    match parse_input_spec("otlp:127.0.0.1:4318,auth_token_file=/etc/tokens", &defaults)
        .unwrap()
        .kind
    {
        InputKind::Otlp {
            tls: None,
            auth_token_file,
            ..
        } => assert_eq!(auth_token_file, Some("/etc/tokens".into())),
        other => panic!("{other:?}"),
    }
    let bare = InputDefaults {
        tls_cert: None,
        tls_key: None,
        ..defaults.clone()
    };
    for (spec, says) in [
        ("tcp:127.0.0.1:6514,tls", "needs a certificate"),
        ("tcp:127.0.0.1:6514,tls,cert=/a.crt", "needs a private key"),
        ("tcp:127.0.0.1:6514,cert=/a.crt,key=/a.key", "need ,tls"),
        ("tcp:127.0.0.1:6514,client_ca=/ca.pem", "need ,tls"),
        ("tcp:127.0.0.1:6514,tls,cert=", "cert= needs a file"),
        (
            "tcp:127.0.0.1:6514,tls,client_ca=",
            "client_ca= needs a file",
        ),
        (
            "udp:127.0.0.1:6514,client_ca=/ca.pem",
            "unknown option 'client_ca'",
        ),
        (
            "tcp:127.0.0.1:6514,auth_token_file=/t",
            "unknown option 'auth_token_file'",
        ),
        (
            "otlp:127.0.0.1:4318,auth_token_file=",
            "auth_token_file= needs a file",
        ),
        ("udp:127.0.0.1:6514,tls", "is not key=value"),
        ("otlp:127.0.0.1:4318,cert=/a.crt", "need ,tls"),
        ("otlp:127.0.0.1:4318,tls", "needs a certificate"),
    ] {
        let error = parse_input_spec(spec, &bare).unwrap_err();
        assert!(error.contains(says), "{spec}: {error}");
    }
}

#[test]
fn tls_outputs_take_their_client_options_after_the_target() {
    let https = |spec| match parse_output_spec(spec).unwrap().kind {
        OutputKind::Http(target) | OutputKind::Otlp(target) => target,
        other => panic!("{other:?}"),
    };
    let plain = https("https://logs.example.com/in");
    assert_eq!((plain.host.as_str(), plain.port), ("logs.example.com", 443));
    assert_eq!(plain.url, "https://logs.example.com/in");
    assert_eq!(plain.tls, Some(TlsClientOptions::default()));
    let full = https(
        "otlp:https://[::1]:4318/v1/logs,gzip,ca=/ca.pem,cert=/c.pem,key=/k.pem,server_name=collector.internal",
    );
    assert!(full.gzip);
    assert_eq!(full.url, "https://[::1]:4318/v1/logs");
    assert_eq!(
        full.tls,
        Some(TlsClientOptions {
            ca: Some("/ca.pem".into()),
            cert: Some("/c.pem".into()),
            key: Some("/k.pem".into()),
            server_name: Some("collector.internal".into()),
            insecure_skip_verify: false,
        })
    );
    assert!(
        https("http:https://h/,insecure_skip_verify=true")
            .tls
            .unwrap()
            .insecure_skip_verify
    );
    assert_eq!(
        parse_output_spec("tcp:h:6514,tls,server_name=10.0.0.1")
            .unwrap()
            .kind,
        OutputKind::Tcp {
            host: "h".into(),
            port: 6514,
            tls: Some(TlsClientOptions {
                server_name: Some("10.0.0.1".into()),
                ..TlsClientOptions::default()
            }),
        }
    );
    for (bad, says) in [
        ("http://h/,ca=/ca.pem", "need TLS"),
        ("tcp:h:1,ca=/ca.pem", "need TLS"),
        ("tcp:h:1,tls,gzip", "gzip is for http"),
        ("https://h/,cert=/c.pem", "both cert=FILE and key=FILE"),
        ("https://h/,ca=", "ca= needs a value"),
        ("https://h/,insecure_skip_verify=yes", "true or false"),
        (
            "https://h/,insecure_skip_verify=true,ca=/x",
            "ca= would be ignored",
        ),
        ("https://h/,server_name=a b", "not a DNS name"),
        ("https://h/,colour=blue", "unknown option 'colour'"),
        ("https://h/a,b", "unknown option 'b'"),
        ("http://h/,tls", "unknown option 'tls'"),
    ] {
        let error = parse_output_spec(bad).unwrap_err();
        assert!(error.contains(says), "{bad}: {error}");
        assert!(!error.contains('\n'), "{error}");
    }
}

#[test]
fn headers_are_checked_for_names_line_breaks_and_what_ringway_sets_itself() {
    let header = parse_header("Authorization", "  Bearer abc\t").unwrap();
    assert_eq!(
        (header.name.as_str(), header.value.as_str()),
        ("Authorization", "Bearer abc")
    );
    assert!(parse_header("X-Tenant_ID.v2", "a:b, c").is_ok());
    for (name, value, says) in [
        ("X-A", "a\r\nX-Injected: 1", "CR or LF"),
        ("X-A", "a\nb", "CR or LF"),
        ("X-A", "a\u{7}b", "control character"),
        ("X A", "v", "not a valid HTTP header name"),
        ("X:A", "v", "not a valid HTTP header name"),
        ("", "v", "not a valid HTTP header name"),
        ("content-length", "1", "set by ringway itself"),
        ("Host", "h", "set by ringway itself"),
        ("Transfer-Encoding", "chunked", "set by ringway itself"),
        ("Connection", "close", "set by ringway itself"),
        ("Content-Type", "x", "set by ringway itself"),
        ("Content-Encoding", "x", "set by ringway itself"),
    ] {
        let error = parse_header(name, value).unwrap_err();
        assert!(error.contains(says), "{name:?}: {error}");
        assert!(
            !error.contains("Injected"),
            "the value is not echoed: {error}"
        );
    }
}
