//! The typed values of the ABI: `vm_prot_t` ([`VmProt`]), `vm_inherit_t` ([`VmInherit`]),
//! `vm_allocate`'s flags ([`VmFlags`]) and `mach_port_name_t` ([`MachPort`]).

use core::fmt;
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};

/// The methods and operators of a set of bits `$t`, a transparent `$raw`.
macro_rules! bit_set {
    ($t:ident, $raw:ty) => {
        impl $t {
            /// The raw bits.
            #[inline]
            pub const fn bits(self) -> $raw {
                self.0
            }

            /// Whether every bit of `other` is set.
            #[inline]
            pub const fn contains(self, other: $t) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether any bit of `other` is set.
            #[inline]
            pub const fn intersects(self, other: $t) -> bool {
                self.0 & other.0 != 0
            }

            /// The bits of `self` and of `other` (`|`, in constants).
            #[inline]
            pub const fn union(self, other: $t) -> $t {
                $t(self.0 | other.0)
            }

            /// The bits of `self` not in `other`.
            #[inline]
            pub const fn without(self, other: $t) -> $t {
                $t(self.0 & !other.0)
            }
        }

        impl BitOr for $t {
            type Output = $t;
            #[inline]
            fn bitor(self, o: $t) -> $t {
                $t(self.0 | o.0)
            }
        }

        impl BitOrAssign for $t {
            #[inline]
            fn bitor_assign(&mut self, o: $t) {
                self.0 |= o.0;
            }
        }

        impl BitAnd for $t {
            type Output = $t;
            #[inline]
            fn bitand(self, o: $t) -> $t {
                $t(self.0 & o.0)
            }
        }

        impl BitAndAssign for $t {
            #[inline]
            fn bitand_assign(&mut self, o: $t) {
                self.0 &= o.0;
            }
        }
    };
}

/// `vm_prot_t`: page protection bits (`VM_PROT_READ`, `WRITE`, `EXECUTE`; `VM_PROT_COPY` in
/// `vm_protect`'s argument). A transparent `i32`, as the guest passes it; bits machvm does
/// not know are kept, so that a call can refuse them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(transparent)]
pub struct VmProt(pub i32);

bit_set!(VmProt, i32);

impl VmProt {
    /// Whether no bit is set (`VM_PROT_NONE`).
    #[inline]
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl Not for VmProt {
    type Output = VmProt;
    #[inline]
    fn not(self) -> VmProt {
        VmProt(!self.0)
    }
}

/// `r-x` style, as `vmmap` shows protections (`---` for none).
impl fmt::Display for VmProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bit = |b: i32, c: char| if self.0 & b != 0 { c } else { '-' };
        write!(f, "{}{}{}", bit(1, 'r'), bit(2, 'w'), bit(4, 'x'))
    }
}

/// `VM_PROT_READ | VM_PROT_WRITE` style, a Rust expression over this crate's constants:
/// `VM_PROT_NONE` for none, unknown bits as `VmProt(0x..)`.
impl fmt::Debug for VmProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 4] = [
            (1, "VM_PROT_READ"),
            (2, "VM_PROT_WRITE"),
            (4, "VM_PROT_EXECUTE"),
            (0x10, "VM_PROT_COPY"),
        ];
        write_named(f, self.0 as u32, &NAMES, "VM_PROT_NONE", "VmProt")
    }
}

/// Writes `bits` as a Rust expression over constants: the bits of `names` by name, in
/// order, joined by ` | `, the others as `ty(0x..)`, and `none` for no bit.
fn write_named(
    f: &mut fmt::Formatter<'_>,
    bits: u32,
    names: &[(u32, &str)],
    none: &str,
    ty: &str,
) -> fmt::Result {
    if bits == 0 {
        return f.write_str(none);
    }
    let mut rest = bits;
    let mut first = true;
    for &(bit, name) in names {
        if rest & bit != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
            rest &= !bit;
            first = false;
        }
    }
    if rest != 0 {
        if !first {
            f.write_str(" | ")?;
        }
        write!(f, "{ty}({rest:#x})")?;
    }
    Ok(())
}

/// `vm_inherit_t`: what a child task gets of a range (`VM_INHERIT_SHARE`, `COPY`, `NONE`).
/// A transparent `u32`, as `vm_region` reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(transparent)]
pub struct VmInherit(pub u32);

impl VmInherit {
    /// XNU's name of the value (`VM_INHERIT_COPY`), or `None` for one it does not define.
    #[inline]
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("VM_INHERIT_SHARE"),
            1 => Some("VM_INHERIT_COPY"),
            2 => Some("VM_INHERIT_NONE"),
            3 => Some("VM_INHERIT_DONATE_COPY"),
            _ => None,
        }
    }
}

/// `copy`, `share`, `none` (as `vmmap` shows them), or the number.
impl fmt::Display for VmInherit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("share"),
            1 => f.write_str("copy"),
            2 => f.write_str("none"),
            n => write!(f, "{n}"),
        }
    }
}

/// XNU's name, or the number.
impl fmt::Debug for VmInherit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "VmInherit({})", self.0),
        }
    }
}

/// `vm_allocate`'s `flags`: `VM_FLAGS_ANYWHERE` or fixed, and the other bits of
/// `VM_FLAGS_USER_ALLOCATE`. A transparent `u32`, as the guest passes it (an `int` in C);
/// bits machvm does not know are kept, so that the call can refuse them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(transparent)]
pub struct VmFlags(pub u32);

bit_set!(VmFlags, u32);

/// `ANYWHERE|PURGABLE` style: `ANYWHERE` or `FIXED` first, then the other bits by their
/// header names, the superpage size and `VM_MAKE_TAG(n)`, unknown bits in hex.
impl fmt::Display for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = self.0;
        f.write_str(if flags & 1 != 0 { "ANYWHERE" } else { "FIXED" })?;
        // The other bits of `VM_FLAGS_USER_ALLOCATE`, by their header names.
        const NAMED: [(u32, &str); 7] = [
            (0x2, "PURGABLE"),
            (0x4, "4GB_CHUNK"),
            (0x8, "RANDOM_ADDR"),
            (0x10, "NO_CACHE"),
            (0x80, "PERMANENT"),
            (0x1000, "TPRO"),
            (0x4000, "OVERWRITE"),
        ];
        let mut rest = flags & !1;
        for (bit, name) in NAMED {
            if rest & bit != 0 {
                write!(f, "|{name}")?;
                rest &= !bit;
            }
        }
        match (rest >> 16) & 7 {
            0 => {}
            1 => f.write_str("|SUPERPAGE_SIZE_ANY")?,
            2 => f.write_str("|SUPERPAGE_SIZE_2MB")?,
            n => write!(f, "|SUPERPAGE({n})")?,
        }
        if rest >> 24 != 0 {
            write!(f, "|VM_MAKE_TAG({})", rest >> 24)?;
        }
        rest &= 0x00f8_ffff;
        if rest != 0 {
            write!(f, "|{rest:#x}")?;
        }
        Ok(())
    }
}

/// `VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE` style, a Rust expression over this crate's
/// constants: `VM_FLAGS_FIXED` for none, the bits without a constant here as
/// `VmFlags(0x..)`.
impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 3] = [
            (0x1, "VM_FLAGS_ANYWHERE"),
            (0x2, "VM_FLAGS_PURGABLE"),
            (0x4000, "VM_FLAGS_OVERWRITE"),
        ];
        write_named(f, self.0, &NAMES, "VM_FLAGS_FIXED", "VmFlags")
    }
}

/// `mach_port_name_t`: a name in a task's port namespace (`mach_task_self()`'s answer, the
/// `task` and `host` arguments). A transparent `u32`, as the guest passes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(transparent)]
pub struct MachPort(pub u32);

impl MachPort {
    /// The raw name.
    #[inline]
    pub const fn name(self) -> u32 {
        self.0
    }
}

/// The name in hex (`0x103`), as traces show it.
impl fmt::Display for MachPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The name in hex, so that `{:#x}` formats it as a number.
impl fmt::LowerHex for MachPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// `MachPort(0x103)`.
impl fmt::Debug for MachPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MachPort({:#x})", self.0)
    }
}

/// The value as the import's `u64`-carried argument (how machvm's `Call::args` carries it).
impl From<MachPort> for u64 {
    #[inline]
    fn from(p: MachPort) -> u64 {
        u64::from(p.0)
    }
}

/// The value as the import's `u64`-carried argument (how machvm's `Call::args` carries it).
impl From<VmFlags> for u64 {
    #[inline]
    fn from(f: VmFlags) -> u64 {
        u64::from(f.0)
    }
}

/// The value as the import's `u64`-carried argument (how machvm's `Call::args` carries it): the
/// `i32` bits, zero-extended.
impl From<VmProt> for u64 {
    #[inline]
    fn from(p: VmProt) -> u64 {
        u64::from(p.0 as u32)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::*;
    use std::format;
    use std::string::ToString;

    #[test]
    fn flags_show_their_header_names() {
        assert_eq!(VM_FLAGS_FIXED.to_string(), "FIXED");
        assert_eq!(
            (VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE).to_string(),
            "ANYWHERE|PURGABLE"
        );
        assert_eq!(format!("{:?}", VM_FLAGS_OVERWRITE), "VM_FLAGS_OVERWRITE");
        assert_eq!(format!("{:?}", VM_FLAGS_FIXED), "VM_FLAGS_FIXED");
        assert_eq!(
            format!("{:?}", VM_FLAGS_ANYWHERE | VmFlags(0x0100_0020)),
            "VM_FLAGS_ANYWHERE | VmFlags(0x1000020)"
        );
        assert_eq!(
            VmFlags(0x0100_0020).to_string(),
            "FIXED|VM_MAKE_TAG(1)|0x20"
        );
        assert!(VM_FLAGS_USER_ALLOCATE.contains(VM_FLAGS_ANYWHERE | VM_FLAGS_OVERWRITE));
        assert!(!VM_FLAGS_USER_ALLOCATE.contains(VmFlags(0x20)));
        assert_eq!(
            VM_FLAGS_USER_REMAP,
            VM_FLAGS_ANYWHERE
                | VM_FLAGS_RANDOM_ADDR
                | VM_FLAGS_RESILIENT_CODESIGN
                | VM_FLAGS_RESILIENT_MEDIA
                | VM_FLAGS_OVERWRITE
                | VM_FLAGS_RETURN_DATA_ADDR
        );
        assert_eq!(
            (VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE).without(VM_FLAGS_ANYWHERE),
            VM_FLAGS_PURGABLE
        );
    }

    #[test]
    fn port_names_are_shown_in_hex() {
        assert_eq!(TASK_SELF_NAME.to_string(), "0x103");
        assert_eq!(format!("{HOST_SELF_NAME:#x}"), "0x203");
        assert_eq!(format!("{MACH_PORT_DEAD:?}"), "MachPort(0xffffffff)");
        assert_eq!(u64::from(MACH_PORT_DEAD), 0xFFFF_FFFF);
    }

    #[test]
    fn protections_widen_to_the_wire_without_sign_extension() {
        assert_eq!(u64::from(VmProt(-1)), 0xFFFF_FFFF);
        assert_eq!(
            format!("{:?}", VM_PROT_READ | VM_PROT_COPY),
            "VM_PROT_READ | VM_PROT_COPY"
        );
        assert_eq!(format!("{:?}", VM_PROT_NONE), "VM_PROT_NONE");
        assert_eq!(format!("{:?}", VmProt(0x21)), "VM_PROT_READ | VmProt(0x20)");
    }
}
