//! `kern_return_t`, the result of every Mach call, with XNU's values, names and messages in
//! one table.

use core::fmt;

/// `kern_return_t`: the result of every Mach call (spec §2), as the guest receives it.
///
/// A transparent `i32` with XNU's codes as associated constants (`KernReturn::SUCCESS`) and,
/// for code written against XNU's headers, as module constants under XNU's names
/// (`KERN_SUCCESS`). [`name`](KernReturn::name) and `Display` give XNU's name,
/// [`message`](KernReturn::message) the text of `mach_error_string`.
///
/// ```
/// use machvm_abi::{KernReturn, KERN_NO_SPACE};
///
/// assert_eq!(KERN_NO_SPACE, KernReturn::NO_SPACE);
/// assert_eq!(KernReturn(3).to_string(), "KERN_NO_SPACE");
/// assert_eq!(KernReturn(3).message(), "(os/kern) no space available");
/// assert_eq!(KernReturn(0x77).name(), None);
/// assert_eq!(KernReturn(0x77).to_string(), "0x77 (unknown kern_return_t)");
/// assert_eq!(KernReturn::result(0), Ok(()));
/// assert_eq!(KernReturn::result(1), Err(KernReturn::INVALID_ADDRESS));
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KernReturn(pub i32);

/// The table: each code's associated constant, XNU's name, value, `mach_error_string` text
/// and meaning.
macro_rules! kern_returns {
    ($($(#[doc = $doc:literal])* $assoc:ident $name:ident = $value:literal, $message:literal;)*) => {
        impl KernReturn {
            $($(#[doc = $doc])* pub const $assoc: KernReturn = KernReturn($value);)*

            /// XNU's name for the code (`"KERN_SUCCESS"`), or `None` for a code machvm
            /// never answers.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// What XNU's `mach_error_string` says of the code
            /// (`"(os/kern) invalid address"`), or `"unknown error code"` for a code
            /// machvm never answers.
            pub const fn message(self) -> &'static str {
                match self.0 {
                    $($value => $message,)*
                    _ => "unknown error code",
                }
            }
        }
        $(
            #[doc = concat!("`KernReturn::", stringify!($assoc), "` under XNU's name.")]
            pub const $name: KernReturn = KernReturn::$assoc;
        )*
    };
}

kern_returns! {
    /// The call succeeded.
    SUCCESS KERN_SUCCESS = 0, "(os/kern) successful";
    /// An address (or range) is not valid in the task's map.
    INVALID_ADDRESS KERN_INVALID_ADDRESS = 1, "(os/kern) invalid address";
    /// The protection of a page does not allow the access.
    PROTECTION_FAILURE KERN_PROTECTION_FAILURE = 2, "(os/kern) protection failure";
    /// No free range of the requested size, or the fixed range is taken.
    NO_SPACE KERN_NO_SPACE = 3, "(os/kern) no space available";
    /// An argument is not valid.
    INVALID_ARGUMENT KERN_INVALID_ARGUMENT = 4, "(os/kern) invalid argument";
    /// Generic failure.
    FAILURE KERN_FAILURE = 5, "(os/kern) failure";
    /// The host could not get the resources (memory, mappings) for the call.
    RESOURCE_SHORTAGE KERN_RESOURCE_SHORTAGE = 6, "(os/kern) resource shortage";
    /// Also what `mach_vm_page_range_query` answers when it cannot store the dispositions:
    /// XNU's `copyout` error (`EFAULT`, 14) returned as a `kern_return_t`.
    ABORTED KERN_ABORTED = 14, "(os/kern) aborted";
    /// The name denotes no right in the caller's namespace (`mach_port_deallocate`).
    INVALID_NAME KERN_INVALID_NAME = 15, "(os/kern) invalid name";
    /// The port is not a task port (`vm_msync` given the host port).
    INVALID_TASK KERN_INVALID_TASK = 16, "(os/kern) invalid task";
    /// The name denotes a right the call cannot take (`mach_port_deallocate` of the task's
    /// own port; `vm_map` asking for more than a memory entry allows).
    INVALID_RIGHT KERN_INVALID_RIGHT = 17, "(os/kern) invalid right";
    /// A flag or value the call does not accept (`mach_make_memory_entry_64`'s flags).
    INVALID_VALUE KERN_INVALID_VALUE = 18, "(os/kern) invalid value";
    /// The port is not the host-privileged port (`vm_wire`: no guest holds it).
    INVALID_HOST KERN_INVALID_HOST = 22, "(os/kern) invalid host";
    /// The port is neither null nor a memory entry (`vm_map`'s `object`).
    INVALID_OBJECT KERN_INVALID_OBJECT = 29, "(os/kern) invalid object";
    /// The task's memory cannot do what the call asks: sharing pages (`vm_remap`) on a
    /// memory that is not backed by shared memory files (spec §8).
    NOT_SUPPORTED KERN_NOT_SUPPORTED = 46, "(os/kern) service not supported";
    /// The port name does not denote a send right in the caller's namespace.
    SEND_INVALID_DEST MACH_SEND_INVALID_DEST = 0x1000_0003, "(ipc/send) invalid destination port";
    /// A port argument other than the destination names no right in the caller's namespace.
    SEND_INVALID_RIGHT MACH_SEND_INVALID_RIGHT = 0x1000_000a, "(ipc/send) invalid port right";
    /// The caller's data buffer for the message is not readable.
    SEND_INVALID_MEMORY MACH_SEND_INVALID_MEMORY = 0x1000_000c, "(ipc/send) invalid memory";
}

impl KernReturn {
    /// Whether this is `KERN_SUCCESS`.
    #[inline]
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }

    /// `Ok(())` for `KERN_SUCCESS`, else `Err` of the code: how a caller turns a raw
    /// `kern_return_t` into a `Result`.
    #[inline]
    pub const fn result(kr: i32) -> Result<(), KernReturn> {
        if kr == 0 {
            Ok(())
        } else {
            Err(KernReturn(kr))
        }
    }
}

impl fmt::Display for KernReturn {
    /// XNU's name, or the value in hex followed by `(unknown kern_return_t)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x} (unknown kern_return_t)", self.0),
        }
    }
}

impl fmt::Debug for KernReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<KernReturn> for i32 {
    #[inline]
    fn from(kr: KernReturn) -> i32 {
        kr.0
    }
}
