/*
 * regions: a tiny vmmap. Maps a few pages with different protections, then
 * walks its own address space with vm_region_64 and prints one line per
 * region on stdout, through WASI (wasi-libc's printf and fd_write).
 *
 * Export: _start (a WASI command). Exit status 0 on success; otherwise it
 * prints "regions: <call>: <mach_error_string> (0x<code>)" on stderr and
 * exits with status 1.
 *
 * Output of the prebuilt regions.wasm (its initial memory is 2 wasm pages,
 * 128 KiB) with 4 KiB pages:
 *
 *   page size 4096
 *   START              END                SIZE     PRT/MAX  INHERIT
 *   0x0000000000000000-0x0000000000021000 132K     rw-/rwx  copy
 *   0x0000000000021000-0x0000000000022000 4K       r--/rwx  copy
 *   0x0000000000022000-0x0000000000023000 4K       ---/rwx  copy
 *   0x0000000000023000-0x0000000000024000 4K       r--/r--  copy
 *   4 regions
 *
 * The demo allocates 4 pages at the lowest free address (right after the
 * initial memory) and changes pages 1..3; page 0 keeps the attributes of the
 * initial memory (rw-/rwx), so vm_region_64 reports both as one region.
 * With 16 KiB pages the same four regions end at 0x24000, 0x28000, 0x2c000
 * and 0x30000.
 */
#include <mach/mach.h>
#include <stdio.h>

static const char *prot_str(vm_prot_t p, char *s)
{
	s[0] = (p & VM_PROT_READ) ? 'r' : '-';
	s[1] = (p & VM_PROT_WRITE) ? 'w' : '-';
	s[2] = (p & VM_PROT_EXECUTE) ? 'x' : '-';
	s[3] = 0;
	return s;
}

static const char *inherit_str(vm_inherit_t i)
{
	switch (i) {
	case VM_INHERIT_SHARE: return "share";
	case VM_INHERIT_COPY: return "copy";
	case VM_INHERIT_NONE: return "none";
	default: return "?";
	}
}

static int fail(const char *what, kern_return_t kr)
{
	fprintf(stderr, "regions: %s: %s (0x%x)\n", what, mach_error_string(kr), (unsigned)kr);
	return 1;
}

int main(void)
{
	task_t self = mach_task_self();
	vm_address_t demo = 0;
	kern_return_t kr;

	printf("page size %lu\n", (unsigned long)vm_page_size);

	/* Four fresh pages: RW, read-only, no access, read-only for good. */
	kr = vm_allocate(self, &demo, 4 * vm_page_size, VM_FLAGS_ANYWHERE);
	if (kr != KERN_SUCCESS)
		return fail("vm_allocate", kr);
	kr = vm_protect(self, demo + vm_page_size, vm_page_size, FALSE, VM_PROT_READ);
	if (kr != KERN_SUCCESS)
		return fail("vm_protect", kr);
	kr = vm_protect(self, demo + 2 * vm_page_size, vm_page_size, FALSE, VM_PROT_NONE);
	if (kr != KERN_SUCCESS)
		return fail("vm_protect", kr);
	kr = vm_protect(self, demo + 3 * vm_page_size, vm_page_size, TRUE, VM_PROT_READ);
	if (kr != KERN_SUCCESS)
		return fail("vm_protect", kr);

	printf("%-18s %-18s %-8s %-8s %s\n", "START", "END", "SIZE", "PRT/MAX", "INHERIT");
	unsigned count = 0;
	vm_address_t addr = 0;
	for (;;) {
		vm_size_t size = 0;
		vm_region_basic_info_data_64_t info;
		mach_msg_type_number_t info_count = VM_REGION_BASIC_INFO_COUNT_64;
		mach_port_t object_name = MACH_PORT_NULL;
		char cur[4], max[4], sizebuf[24];

		kr = vm_region_64(self, &addr, &size, VM_REGION_BASIC_INFO_64,
			(vm_region_info_t)&info, &info_count, &object_name);
		if (kr == KERN_INVALID_ADDRESS)
			break; /* no region at or above addr */
		if (kr != KERN_SUCCESS)
			return fail("vm_region_64", kr);
		snprintf(sizebuf, sizeof sizebuf, "%luK", (unsigned long)(size / 1024));
		printf("0x%016llx-0x%016llx %-8s %s/%s  %s\n", (unsigned long long)addr,
			(unsigned long long)addr + size, sizebuf, prot_str(info.protection, cur),
			prot_str(info.max_protection, max), inherit_str(info.inheritance));
		count++;
		if (addr + size < addr)
			break; /* the last region ends at the top of the address space */
		addr += size;
	}
	printf("%u regions\n", count);
	return 0;
}
