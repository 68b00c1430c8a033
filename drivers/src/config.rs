//! Per-role device configuration as the agent embeds it in its TOML file, and port discovery:
//! a configured path, or a USB vid/pid looked up with `serialport::available_ports()`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::DriverError;
use crate::display::{DisplayCommandSet, ScreenLabels};
use crate::printer::{QrErrorCorrection, ReceiptLayout};
use crate::scanner::ScanSuffix;

/// Which USB serial adapter or device is meant, for when `/dev/ttyUSBn` numbering moves around.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbMatch {
    /// USB vendor id (TOML accepts `0x04b8`).
    pub vid: u16,
    /// USB product id.
    pub pid: u16,
    /// Serial number, to tell two identical adapters apart.
    #[serde(default)]
    pub serial_number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(try_from = "u8")]
pub enum DataBits {
    Seven,
    #[default]
    Eight,
}

impl TryFrom<u8> for DataBits {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            7 => Ok(DataBits::Seven),
            8 => Ok(DataBits::Eight),
            _ => Err(format!("data_bits must be 7 or 8, not {n}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(try_from = "u8")]
pub enum StopBits {
    #[default]
    One,
    Two,
}

impl TryFrom<u8> for StopBits {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            1 => Ok(StopBits::One),
            2 => Ok(StopBits::Two),
            _ => Err(format!("stop_bits must be 1 or 2, not {n}")),
        }
    }
}

/// Where a device is and how to talk to it; shared by all roles (flattened into each).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PortConfig {
    /// Device path, e.g. `/dev/ttyUSB0` or a udev symlink like `/dev/kassa-printer`.
    pub path: Option<PathBuf>,
    /// USB match; tried before `path` when both are set.
    pub usb: Option<UsbMatch>,
    pub baud: u32,
    pub data_bits: DataBits,
    pub parity: Parity,
    pub stop_bits: StopBits,
    /// Longest wait between reconnection attempts while unplugged, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            path: None,
            usb: None,
            baud: 9600,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            max_backoff_ms: 1000,
        }
    }
}

impl PortConfig {
    /// A port at `path` with 9600 8N1.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), DriverError> {
        if self.path.is_none() && self.usb.is_none() {
            return Err(DriverError::InvalidConfig(
                "a device needs `path` or `usb`".into(),
            ));
        }
        if self.baud == 0 {
            return Err(DriverError::InvalidConfig("baud must be above 0".into()));
        }
        Ok(())
    }

    pub(crate) fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.max_backoff_ms.max(10))
    }

    /// The port to open now: the USB match if it is plugged in, else the configured path.
    pub fn resolve(&self) -> Result<PathBuf, DriverError> {
        if let Some(path) = self.usb.as_ref().and_then(find_usb) {
            return Ok(path);
        }
        match &self.path {
            Some(path) => Ok(path.clone()),
            None => Err(DriverError::NotFound(match &self.usb {
                Some(u) => format!("USB {:04x}:{:04x}", u.vid, u.pid),
                None => "no path".into(),
            })),
        }
    }

    pub(crate) fn builder(&self, path: &std::path::Path) -> serialport::SerialPortBuilder {
        serialport::new(path.to_string_lossy(), self.baud)
            .data_bits(match self.data_bits {
                DataBits::Seven => serialport::DataBits::Seven,
                DataBits::Eight => serialport::DataBits::Eight,
            })
            .parity(match self.parity {
                Parity::None => serialport::Parity::None,
                Parity::Odd => serialport::Parity::Odd,
                Parity::Even => serialport::Parity::Even,
            })
            .stop_bits(match self.stop_bits {
                StopBits::One => serialport::StopBits::One,
                StopBits::Two => serialport::StopBits::Two,
            })
            .flow_control(serialport::FlowControl::None)
            // Pseudo-terminals and some adapters have no modem lines; never ask for DTR.
            .dtr_on_open(false)
    }
}

fn find_usb(usb: &UsbMatch) -> Option<PathBuf> {
    let ports = serialport::available_ports().ok()?;
    ports.into_iter().find_map(|p| match p.port_type {
        serialport::SerialPortType::UsbPort(info)
            if info.vid == usb.vid
                && info.pid == usb.pid
                && usb
                    .serial_number
                    .as_ref()
                    .is_none_or(|s| info.serial_number.as_ref() == Some(s)) =>
        {
            Some(PathBuf::from(p.port_name))
        }
        _ => None,
    })
}

/// Customer pole display.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct DisplayConfig {
    #[serde(flatten)]
    pub port: PortConfig,
    pub command_set: DisplayCommandSet,
    /// Words of the standard screens, in the store's language.
    pub labels: ScreenLabels,
}

/// Barcode scanner in serial mode.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ScannerConfig {
    #[serde(flatten)]
    pub port: PortConfig,
    pub suffix: ScanSuffix,
    /// Silence that ends a scan without suffix, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        Self {
            port: PortConfig::default(),
            suffix: ScanSuffix::CrLf,
            timeout_ms: 50,
        }
    }
}

/// ESC/POS receipt printer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PrinterConfig {
    #[serde(flatten)]
    pub port: PortConfig,
    /// Characters per line: 48 for 80 mm paper, 32 for 58 mm.
    pub width: usize,
    pub qr_module_size: u8,
    pub qr_error_correction: QrErrorCorrection,
    /// How often the paper/cover status is asked, in milliseconds.
    pub status_interval_ms: u64,
    /// How long a status reply may take before the printer counts as offline, in milliseconds.
    pub status_timeout_ms: u64,
}

impl Default for PrinterConfig {
    fn default() -> Self {
        Self {
            port: PortConfig {
                baud: 19200,
                ..PortConfig::default()
            },
            width: 48,
            qr_module_size: 6,
            qr_error_correction: QrErrorCorrection::M,
            status_interval_ms: 1000,
            status_timeout_ms: 2000,
        }
    }
}

impl PrinterConfig {
    pub(crate) fn layout(&self) -> ReceiptLayout {
        ReceiptLayout {
            width: self.width.clamp(16, 96),
            qr_module_size: self.qr_module_size,
            qr_error_correction: self.qr_error_correction,
            ..ReceiptLayout::default()
        }
    }
}

/// Magnetic stripe reader in serial mode.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CardReaderConfig {
    #[serde(flatten)]
    pub port: PortConfig,
    /// Number prefixes of the store's own loyalty/gift cards.
    pub loyalty_prefixes: Vec<String>,
    /// Silence that ends a swipe, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for CardReaderConfig {
    fn default() -> Self {
        Self {
            port: PortConfig::default(),
            loyalty_prefixes: Vec::new(),
            timeout_ms: 100,
        }
    }
}

/// All peripherals of one terminal; each is optional (`[devices.printer]` etc. in the agent's TOML).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    pub display: Option<DisplayConfig>,
    pub scanner: Option<ScannerConfig>,
    pub printer: Option<PrinterConfig>,
    pub card_reader: Option<CardReaderConfig>,
}

/// The keys each `[devices.<role>]` section accepts. Serde cannot refuse unknown keys through
/// the flattened `PortConfig`, so whoever reads the configuration checks against these; a key
/// added to a config struct must be added here too, or the agent refuses it as unknown (the
/// test below checks that every listed key is one serde reads).
pub const PORT_KEYS: &[&str] = &[
    "path",
    "usb",
    "baud",
    "data_bits",
    "parity",
    "stop_bits",
    "max_backoff_ms",
];

/// The role's own keys (besides `PORT_KEYS`), by section name; None for an unknown role.
pub fn role_keys(role: &str) -> Option<&'static [&'static str]> {
    Some(match role {
        "display" => &["command_set", "labels"],
        "scanner" => &["suffix", "timeout_ms"],
        "printer" => &[
            "width",
            "qr_module_size",
            "qr_error_correction",
            "status_interval_ms",
            "status_timeout_ms",
        ],
        "card_reader" => &["loyalty_prefixes", "timeout_ms"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed key is one the struct really reads: setting it changes the parsed value.
    #[test]
    fn the_key_lists_name_exactly_the_fields_serde_reads() {
        let sample = |key: &str| -> &str {
            match key {
                "path" => "path = \"/dev/x\"",
                "usb" => "usb = { vid = 1, pid = 2 }",
                "baud" => "baud = 1234",
                "data_bits" => "data_bits = 7",
                "parity" => "parity = \"even\"",
                "stop_bits" => "stop_bits = 2",
                "max_backoff_ms" => "max_backoff_ms = 7",
                "command_set" => "command_set = \"cd5220\"",
                "labels" => "labels.total = \"Att betala\"",
                "suffix" => "suffix = \"lf\"",
                "timeout_ms" => "timeout_ms = 7",
                "width" => "width = 33",
                "qr_module_size" => "qr_module_size = 3",
                "qr_error_correction" => "qr_error_correction = \"H\"",
                "status_interval_ms" => "status_interval_ms = 7",
                "status_timeout_ms" => "status_timeout_ms = 7",
                "loyalty_prefixes" => "loyalty_prefixes = [\"99\"]",
                other => panic!("no sample for {other}"),
            }
        };
        for role in ["display", "scanner", "printer", "card_reader"] {
            let plain: DevicesConfig = toml::from_str(&format!("[{role}]\n")).unwrap();
            for key in PORT_KEYS.iter().chain(role_keys(role).unwrap()) {
                let text = format!("[{role}]\n{}\n", sample(key));
                let set: DevicesConfig =
                    toml::from_str(&text).unwrap_or_else(|e| panic!("{role}.{key}: {e}"));
                assert_ne!(set, plain, "{role}.{key} is listed but not read");
            }
        }
    }

    #[test]
    fn the_agent_can_embed_device_config_in_its_toml() {
        let config: DevicesConfig = toml::from_str(
            r#"
            [display]
            path = "/dev/ttyUSB0"
            command_set = "cd5220"
            labels.total = "Att betala"

            [scanner]
            usb = { vid = 0x05e0, pid = 0x1200 }
            suffix = "cr"
            timeout_ms = 80

            [printer]
            path = "/dev/kassa-printer"
            baud = 38400
            parity = "even"
            data_bits = 7
            stop_bits = 2
            width = 32
            qr_error_correction = "Q"

            [card_reader]
            path = "/dev/ttyUSB3"
            loyalty_prefixes = ["9752"]
            "#,
        )
        .expect("valid config");
        let display = config.display.expect("display");
        assert_eq!(display.command_set, DisplayCommandSet::Cd5220);
        assert_eq!(display.labels.total, "Att betala");
        assert_eq!(display.labels.thank_you, "Thank you!");
        let scanner = config.scanner.expect("scanner");
        assert_eq!(
            scanner.port.usb,
            Some(UsbMatch {
                vid: 0x05e0,
                pid: 0x1200,
                serial_number: None
            })
        );
        assert_eq!((scanner.suffix, scanner.timeout_ms), (ScanSuffix::Cr, 80));
        let printer = config.printer.expect("printer");
        assert_eq!(
            (
                printer.port.baud,
                printer.port.parity,
                printer.port.data_bits,
                printer.port.stop_bits
            ),
            (38400, Parity::Even, DataBits::Seven, StopBits::Two)
        );
        assert_eq!(printer.qr_error_correction, QrErrorCorrection::Q);
        assert_eq!(
            config.card_reader.expect("reader").loyalty_prefixes,
            vec!["9752".to_string()]
        );
    }

    #[test]
    fn impossible_settings_are_rejected() {
        assert!(toml::from_str::<PortConfig>("path = \"/dev/x\"\ndata_bits = 9").is_err());
        assert!(
            PortConfig::default().validate().is_err(),
            "no path and no usb"
        );
    }
}
