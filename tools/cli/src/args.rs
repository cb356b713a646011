//! Command-line arguments: a command, positional values and `--flag value`
//! (or `--flag=value`) pairs. Every flag takes a value; a flag a command does
//! not read is an error rather than silently ignored.

use std::collections::BTreeMap;

/// The user asked for something that cannot be run: print usage, exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

#[derive(Debug, Default)]
pub struct Args {
    /// Empty when no command was given.
    pub command: String,
    pub help: bool,
    positional: Vec<String>,
    flags: BTreeMap<String, String>,
}

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Args> {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" || (parsed.command.is_empty() && arg == "help") {
                parsed.help = true;
                continue;
            }
            let Some(flag) = arg.strip_prefix("--") else {
                if parsed.command.is_empty() {
                    parsed.command = arg;
                } else {
                    parsed.positional.push(arg);
                }
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| usage(format!("--{flag} needs a value")))?;
                    (flag.to_string(), value)
                }
            };
            if parsed.flags.insert(name.clone(), value).is_some() {
                return Err(usage(format!("--{name} is given twice")));
            }
        }
        Ok(parsed)
    }

    /// The value of `--name`, if given.
    pub fn flag(&mut self, name: &str) -> Option<String> {
        self.flags.remove(name)
    }

    pub fn required_flag(&mut self, name: &str) -> anyhow::Result<String> {
        self.flag(name)
            .ok_or_else(|| usage(format!("{} needs --{name}", self.command)))
    }

    /// A decimal number such as a latitude.
    pub fn number_flag(&mut self, name: &str) -> anyhow::Result<Option<f64>> {
        let Some(text) = self.flag(name) else {
            return Ok(None);
        };
        match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Some(value)),
            _ => Err(usage(format!("--{name} must be a number, got {text:?}"))),
        }
    }

    /// The one positional value the command takes, e.g. an SR number.
    pub fn positional(&mut self, what: &str) -> anyhow::Result<String> {
        if self.positional.is_empty() {
            return Err(usage(format!("{} needs {what}", self.command)));
        }
        Ok(self.positional.remove(0))
    }

    /// Fails on anything the command did not read.
    pub fn finish(self) -> anyhow::Result<()> {
        if let Some(extra) = self.positional.first() {
            return Err(usage(format!("{} does not take {extra:?}", self.command)));
        }
        if let Some(name) = self.flags.keys().next() {
            return Err(usage(format!("{} does not take --{name}", self.command)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::parse(args.iter().map(|a| a.to_string())).unwrap()
    }

    #[test]
    fn reads_commands_flags_and_positionals() {
        let mut args = parse(&[
            "create",
            "--type",
            "Illegal Parking",
            "--lat=40.7484",
            "--lon",
            "-73.9857",
        ]);
        assert_eq!(args.command, "create");
        assert_eq!(args.required_flag("type").unwrap(), "Illegal Parking");
        assert_eq!(args.number_flag("lat").unwrap(), Some(40.7484));
        // a negative number is a value, not a flag
        assert_eq!(args.number_flag("lon").unwrap(), Some(-73.9857));
        assert_eq!(args.flag("descriptor"), None);
        args.finish().unwrap();

        let mut args = parse(&["get", "SR-2026-0000042"]);
        assert_eq!(args.positional("an SR number").unwrap(), "SR-2026-0000042");
        args.finish().unwrap();
    }

    #[test]
    fn refuses_what_a_command_does_not_take() {
        let error = parse(&["rules", "--colour", "red"]).finish().unwrap_err();
        assert_eq!(error.to_string(), "rules does not take --colour");
        let error = parse(&["get"]).positional("an SR number").unwrap_err();
        assert_eq!(error.to_string(), "get needs an SR number");
        let error = parse(&["create", "--lat", "north"])
            .number_flag("lat")
            .unwrap_err();
        assert!(error.is::<UsageError>());
        assert!(Args::parse(["create".to_string(), "--type".to_string()]).is_err());
        assert!(parse(&["--help"]).help);
    }
}
