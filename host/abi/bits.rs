//! The typed values of the ABI: `vm_prot_t` ([`VmProt`]) and `vm_inherit_t` ([`VmInherit`]).

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};

/// `vm_prot_t`: page protection bits (`VM_PROT_READ`, `WRITE`, `EXECUTE`; `VM_PROT_COPY` in
/// `vm_protect`'s argument). A transparent `i32`, as the guest passes it; bits machvm does
/// not know are kept, so that a call can refuse them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(transparent)]
pub struct VmProt(pub i32);

impl VmProt {
    /// The raw bits.
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: VmProt) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: VmProt) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no bit is set (`VM_PROT_NONE`).
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The bits of `self` and of `other` (`|`, in constants).
    pub const fn union(self, other: VmProt) -> VmProt {
        VmProt(self.0 | other.0)
    }

    /// The bits of `self` not in `other`.
    pub const fn without(self, other: VmProt) -> VmProt {
        VmProt(self.0 & !other.0)
    }
}

impl BitOr for VmProt {
    type Output = VmProt;
    fn bitor(self, o: VmProt) -> VmProt {
        VmProt(self.0 | o.0)
    }
}

impl BitOrAssign for VmProt {
    fn bitor_assign(&mut self, o: VmProt) {
        self.0 |= o.0;
    }
}

impl BitAnd for VmProt {
    type Output = VmProt;
    fn bitand(self, o: VmProt) -> VmProt {
        VmProt(self.0 & o.0)
    }
}

impl BitAndAssign for VmProt {
    fn bitand_assign(&mut self, o: VmProt) {
        self.0 &= o.0;
    }
}

impl Not for VmProt {
    type Output = VmProt;
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

/// `VM_PROT_READ | VM_PROT_WRITE` style; `VM_PROT_NONE` for none, unknown bits in hex.
impl fmt::Debug for VmProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(i32, &str); 4] = [
            (1, "VM_PROT_READ"),
            (2, "VM_PROT_WRITE"),
            (4, "VM_PROT_EXECUTE"),
            (0x10, "VM_PROT_COPY"),
        ];
        if self.0 == 0 {
            return f.write_str("VM_PROT_NONE");
        }
        let mut rest = self.0;
        let mut first = true;
        for (bit, name) in NAMES {
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
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

/// `vm_inherit_t`: what a child task gets of a range (`VM_INHERIT_SHARE`, `COPY`, `NONE`).
/// A transparent `u32`, as `vm_region` reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(transparent)]
pub struct VmInherit(pub u32);

impl VmInherit {
    /// XNU's name of the value (`VM_INHERIT_COPY`), or `None` for one it does not define.
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
