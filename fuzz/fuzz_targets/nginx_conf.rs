//! nginx configuration text: any text is read or refused with a line, and every log_format it
//! defines compiles or is refused with a character. Includes read the same text (nested until
//! the depth limit).
#![no_main]
use bouncer_fuzz::parse::nginx_conf;
use bouncer_fuzz::parse::LogFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut include = |_: &str, _: &str| Ok(vec![("inc.conf".to_string(), text.to_string())]);
    match nginx_conf::read("nginx.conf", &text, &mut include) {
        Ok(conf) => {
            for f in &conf.formats {
                let _ = LogFormat::compile(&f.name, &f.format, f.escape.as_deref())
                    .map_err(|e| e.to_string());
            }
        }
        Err(e) => assert!(e.line >= 1, "{e}"),
    }
});
