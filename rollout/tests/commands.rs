#![cfg(test)]
//! The one command parser: the words people type, and `<command>/<id>` as the annotation and command
//! files carry it.

use rollout::command::{parse_request, Command};

#[test]
fn every_command_round_trips_through_its_word_and_its_request() {
    for command in Command::ALL {
        assert_eq!(command.as_str().parse::<Command>(), Ok(command));
        let value = command.request("abc");
        assert_eq!(value, format!("{}/abc", command.as_str()));
        assert_eq!(
            parse_request("metadata.annotations[sluice.dev/command]", &value).unwrap(),
            (value.clone(), command)
        );
    }
    assert!("stop".parse::<Command>().is_err());
    assert!("Pause".parse::<Command>().is_err());
}

#[test]
fn a_malformed_request_names_where_it_came_from_and_its_value() {
    for bad in ["pause", "pause/", "stop/abc", ""] {
        let error = parse_request("metadata.annotations[sluice.dev/command]", bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains("sluice.dev/command"), "{bad:?}: {error}");
        assert!(error.contains(&format!("{bad:?}")), "{bad:?}: {error}");
    }
}
