/*
 * conform: the error paths and edge cases of spec §4 and §9, checked from inside a
 * guest. Every check is one call with the kern_return_t the spec prescribes; the
 * first mismatch stops the test. Built for wasm32 (conform.wasm) and wasm64
 * (conform64.wasm): the word-sized vm_* calls wrap at 2^32 in the first and
 * at 2^64 in the second.
 *
 * Exports:
 *   conform_selftest() -> i32   0 when every check passed, else the number
 *                               of the first failing check (the CHECK(n, ...)
 *                               below; 1..121).
 *   last_kr() -> i32            at a failing check: what the call returned
 *                               (or, for a check on data, -1).
 *   task_self_name() -> i32     mach_task_self(): 0x103 (259) in machvm.
 *   host_self_name() -> i32     mach_host_self(): 0x203 (515) in machvm.
 *
 * It uses only memory it allocated itself, and frees it again, so the
 * guest's own data and stack are never touched by a protection change.
 */
#include <mach/mach.h>

static kern_return_t g_last_kr;

kern_return_t last_kr(void) { return g_last_kr; }
mach_port_t task_self_name(void) { return mach_task_self(); }
mach_port_t host_self_name(void) { return mach_host_self(); }

/* A call that must answer `want`. */
#define CHECK(n, call, want)                       \
	do {                                       \
		kern_return_t kr_ = (call);        \
		if (kr_ != (want)) {               \
			g_last_kr = kr_;           \
			return (n);                \
		}                                  \
	} while (0)

/* A condition on data that must hold. */
#define ENSURE(n, cond)                            \
	do {                                       \
		if (!(cond)) {                     \
			g_last_kr = -1;            \
			return (n);                \
		}                                  \
	} while (0)

static kern_return_t region(vm_address_t *addr, vm_size_t *size,
	vm_region_basic_info_data_64_t *info, vm_region_flavor_t flavor,
	mach_msg_type_number_t count)
{
	mach_port_t object_name;
	return vm_region_64(mach_task_self(), addr, size, flavor,
		(vm_region_info_t)info, &count, &object_name);
}

static unsigned char buf[64];

int conform_selftest(void)
{
	task_t self = mach_task_self();
	vm_size_t P = 0;
	vm_address_t a, b, x;
	vm_size_t sz;
	mach_msg_type_number_t cnt;
	vm_offset_t data;
	vm_region_basic_info_data_64_t info;
	const vm_address_t top = (vm_address_t)0 - 16; /* 16 bytes below the wrap */

	/* Ports and page size. */
	CHECK(1, host_page_size(mach_host_self(), &P), KERN_SUCCESS);
	ENSURE(2, P >= 4096 && 65536 % P == 0 && (P & (P - 1)) == 0);
	ENSURE(3, MACH_PORT_VALID(self) && MACH_PORT_VALID(mach_host_self()) &&
		self != mach_host_self());

	/* Bad task names: not in the namespace, or not a task. */
	a = 0x1234;
	CHECK(4, vm_allocate(MACH_PORT_NULL, &a, P, VM_FLAGS_ANYWHERE), MACH_SEND_INVALID_DEST);
	ENSURE(5, a == 0x1234); /* out-parameters are written only on success */
	CHECK(6, vm_protect(MACH_PORT_DEAD, 0, P, FALSE, VM_PROT_READ), MACH_SEND_INVALID_DEST);
	CHECK(7, vm_deallocate(0x7777u, 0, P), MACH_SEND_INVALID_DEST);
	CHECK(8, vm_allocate(mach_host_self(), &a, P, VM_FLAGS_ANYWHERE), KERN_INVALID_ARGUMENT);

	/* vm_allocate. */
	CHECK(9, vm_allocate(self, &a, P, 0x100), KERN_INVALID_ARGUMENT);
	a = 0x5000;
	CHECK(10, vm_allocate(self, &a, 0, VM_FLAGS_ANYWHERE), KERN_SUCCESS);
	ENSURE(11, a == 0);
	/* Ignored bits of VM_FLAGS_USER_ALLOCATE are accepted (a tag here). */
	CHECK(12, vm_allocate(self, &a, 3 * P, VM_FLAGS_ANYWHERE | VM_MAKE_TAG(200)), KERN_SUCCESS);
	ENSURE(13, a != 0 && (a & (P - 1)) == 0);
	b = a + P; /* the middle page */
	x = b;
	CHECK(14, vm_allocate(self, &x, P, VM_FLAGS_FIXED), KERN_NO_SPACE);
	((volatile unsigned char *)b)[7] = 0xAB;
	x = b + 5; /* FIXED truncates the address to its page */
	CHECK(15, vm_allocate(self, &x, P, VM_FLAGS_FIXED | VM_FLAGS_OVERWRITE), KERN_SUCCESS);
	ENSURE(16, x == b && ((volatile unsigned char *)b)[7] == 0); /* replaced by zeroes */
	((volatile unsigned char *)b)[9] = 0xCD;
	CHECK(17, vm_deallocate(self, b, P), KERN_SUCCESS);
	x = b;
	CHECK(18, vm_allocate(self, &x, P, VM_FLAGS_FIXED), KERN_SUCCESS);
	ENSURE(19, x == b && ((volatile unsigned char *)b)[9] == 0); /* freed pages come back zero */

	/* vm_protect. */
	CHECK(20, vm_protect(self, a, 0, FALSE, VM_PROT_NO_CHANGE), KERN_INVALID_ARGUMENT);
	CHECK(21, vm_protect(self, 0x10, 0, FALSE, VM_PROT_ALL), KERN_SUCCESS);
	CHECK(22, vm_protect(self, top, 32, FALSE, VM_PROT_READ), KERN_INVALID_ARGUMENT);
	CHECK(23, vm_protect(self, a, 3 * P, FALSE, VM_PROT_ALL), KERN_SUCCESS);
	CHECK(24, vm_protect(self, a, 3 * P, FALSE, VM_PROT_DEFAULT), KERN_SUCCESS);
	/* set_maximum: max = prot and cur = cur & prot. */
	CHECK(25, vm_protect(self, b, P, TRUE, VM_PROT_READ), KERN_SUCCESS);
	x = b;
	CHECK(26, region(&x, &sz, &info, VM_REGION_BASIC_INFO_64, VM_REGION_BASIC_INFO_COUNT_64), KERN_SUCCESS);
	ENSURE(27, x == b && sz == P && info.protection == VM_PROT_READ &&
		info.max_protection == VM_PROT_READ && info.inheritance == VM_INHERIT_COPY &&
		info.shared == 0 && info.reserved == 0 && info.offset == 0 &&
		info.behavior == VM_BEHAVIOR_DEFAULT && info.user_wired_count == 0);
	CHECK(28, vm_protect(self, b, P, FALSE, VM_PROT_DEFAULT), KERN_PROTECTION_FAILURE);
	/* A range that fails anywhere changes nothing (first page is RW/ALL). */
	CHECK(29, vm_protect(self, a, 3 * P, FALSE, VM_PROT_DEFAULT), KERN_PROTECTION_FAILURE);
	/* VM_PROT_COPY: the maximum gains WRITE. */
	CHECK(30, vm_protect(self, b, P, FALSE, VM_PROT_COPY | VM_PROT_DEFAULT), KERN_SUCCESS);
	x = b;
	CHECK(31, region(&x, &sz, &info, VM_REGION_BASIC_INFO_64, VM_REGION_BASIC_INFO_COUNT_64), KERN_SUCCESS);
	ENSURE(32, x == b && info.protection == VM_PROT_DEFAULT &&
		info.max_protection == (VM_PROT_READ | VM_PROT_WRITE));

	/* vm_region_64. */
	x = a;
	CHECK(33, region(&x, &sz, &info, 7, VM_REGION_BASIC_INFO_COUNT_64), KERN_INVALID_ARGUMENT);
	CHECK(34, region(&x, &sz, &info, VM_REGION_BASIC_INFO_64, 8), KERN_INVALID_ARGUMENT);
	CHECK(35, region(&x, &sz, &info, VM_REGION_BASIC_INFO, 9), KERN_SUCCESS);
	/* Nothing is mapped at or above 2^39 (past a 32-bit guest's map). */
	mach_vm_address_t ma = (mach_vm_address_t)1 << 39;
	mach_vm_size_t ms = 77;
	cnt = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t on;
	CHECK(36, mach_vm_region(self, &ma, &ms, VM_REGION_BASIC_INFO_64, (vm_region_info_t)&info, &cnt, &on),
		KERN_INVALID_ADDRESS);
	ENSURE(37, ma == (mach_vm_address_t)1 << 39 && ms == 77);

	/* vm_copy. */
	CHECK(38, vm_copy(self, top, 0, 0x10), KERN_SUCCESS);
	CHECK(39, vm_copy(self, top, 32, a), KERN_INVALID_ADDRESS);
	CHECK(40, vm_protect(self, b, P, FALSE, VM_PROT_NONE), KERN_SUCCESS);
	CHECK(41, vm_copy(self, b, 16, a), KERN_PROTECTION_FAILURE);
	CHECK(42, vm_protect(self, b, P, FALSE, VM_PROT_READ), KERN_SUCCESS);
	((volatile unsigned char *)a)[0] = 0x11;
	CHECK(43, vm_copy(self, a, 16, b + P - 8), KERN_PROTECTION_FAILURE);
	/* the source is checked whole before the destination */
	CHECK(44, vm_copy(self, a + 3 * P - 8, 16, b), KERN_INVALID_ADDRESS);
	CHECK(45, vm_copy(self, a, 16, b + 2 * P - 8), KERN_INVALID_ADDRESS);
	ENSURE(46, ((volatile unsigned char *)(a + 2 * P))[P - 8] == 0); /* all or nothing */

	/* vm_write / vm_read / vm_read_overwrite. */
	CHECK(47, vm_protect(self, b, P, FALSE, VM_PROT_NONE), KERN_SUCCESS);
	CHECK(48, vm_write(self, a, (vm_offset_t)b, 16), MACH_SEND_INVALID_MEMORY);
	CHECK(49, vm_write(self, top, (vm_offset_t)buf, 0), KERN_SUCCESS);
	CHECK(50, vm_write(self, a + 2 * P, (vm_offset_t)buf, 16), KERN_SUCCESS);
	data = 1;
	cnt = 1;
	CHECK(51, vm_read(self, top, 0, &data, &cnt), KERN_SUCCESS);
	ENSURE(52, data == 0 && cnt == 0);
	CHECK(53, mach_vm_read(self, 0, (mach_vm_size_t)1 << 32, &data, &cnt), KERN_INVALID_ARGUMENT);
	sz = 5;
	CHECK(54, vm_read_overwrite(self, top, 0, (vm_address_t)buf, &sz), KERN_SUCCESS);
	ENSURE(55, sz == 0);
	CHECK(56, vm_read_overwrite(self, b, 16, (vm_address_t)buf, &sz), KERN_PROTECTION_FAILURE);

	/* The 64-bit forms: past the map. */
	CHECK(57, mach_vm_protect(self, (mach_vm_address_t)1 << 50, P, FALSE, VM_PROT_READ), KERN_INVALID_ADDRESS);
	mach_vm_address_t fixed = (mach_vm_address_t)1 << 50;
	CHECK(58, mach_vm_allocate(self, &fixed, P, VM_FLAGS_FIXED), KERN_INVALID_ADDRESS);

	/* vm_deallocate. */
	CHECK(59, vm_deallocate(self, top, 32), KERN_INVALID_ARGUMENT);
	CHECK(60, vm_deallocate(self, a, 3 * P), KERN_SUCCESS);
	CHECK(61, vm_deallocate(self, a, 3 * P), KERN_SUCCESS); /* holes are skipped */
	CHECK(62, vm_protect(self, a, P, FALSE, VM_PROT_READ), KERN_INVALID_ADDRESS);

	/* vm_read copies every page the range touches and keeps the source's
	 * offset within its page, as XNU ("Read address has the correct
	 * boundary offset"); vm_deallocate(data, count) frees all of it. */
	vm_address_t src = 0;
	CHECK(63, vm_allocate(self, &src, 2 * P, VM_FLAGS_ANYWHERE), KERN_SUCCESS);
	for (vm_size_t i = 0; i < 2 * P; i++)
		((volatile unsigned char *)src)[i] = (unsigned char)(i * 7 + 1);
	vm_address_t at = src + P - 3; /* 10 bytes across the page boundary */
	CHECK(64, vm_read(self, at, 10, &data, &cnt), KERN_SUCCESS);
	ENSURE(65, (data & (P - 1)) == (at & (P - 1)) && cnt == 10);
	for (vm_size_t i = 0; i < 2 * P; i++)
		ENSURE(66, ((volatile unsigned char *)(data - (P - 3)))[i] == (unsigned char)(i * 7 + 1));
	CHECK(67, vm_deallocate(self, data, cnt), KERN_SUCCESS);
	CHECK(68, vm_protect(self, data - (P - 3), P, FALSE, VM_PROT_READ), KERN_INVALID_ADDRESS);
	CHECK(69, vm_protect(self, data + 3, P, FALSE, VM_PROT_READ), KERN_INVALID_ADDRESS);
	CHECK(70, vm_deallocate(self, src, 2 * P), KERN_SUCCESS);

	/* The rest of the VM surface: vm_region, vm_behavior_set, vm_msync,
	 * vm_wire. Three pages, the last one freed: [c, c + 2P) mapped. */
	vm_address_t c = 0;
	CHECK(71, vm_allocate(self, &c, 3 * P, VM_FLAGS_ANYWHERE), KERN_SUCCESS);
	CHECK(72, vm_deallocate(self, c + 2 * P, P), KERN_SUCCESS);
	((volatile unsigned char *)c)[5] = 0x5a;
	CHECK(73, vm_behavior_set(self, c + P, 1, VM_BEHAVIOR_SEQUENTIAL), KERN_SUCCESS);
	/* vm_region splits at the behavior and reports it, in both structs. */
	vm_region_basic_info_data_t info32;
	x = c;
	cnt = VM_REGION_BASIC_INFO_COUNT;
	CHECK(74, vm_region(self, &x, &sz, VM_REGION_BASIC_INFO, (vm_region_info_t)&info32, &cnt, &on),
		KERN_SUCCESS);
	/* (the region may start below c: memory below is RW with the default too) */
	ENSURE(75, x <= c && x + sz == c + P && info32.behavior == VM_BEHAVIOR_DEFAULT &&
		cnt == VM_REGION_BASIC_INFO_COUNT);
	x = c + P;
	CHECK(76, region(&x, &sz, &info, VM_REGION_BASIC_INFO_64, VM_REGION_BASIC_INFO_COUNT_64), KERN_SUCCESS);
	ENSURE(77, x == c + P && sz == P && info.behavior == VM_BEHAVIOR_SEQUENTIAL);
	CHECK(78, vm_behavior_set(self, c, 3 * P, VM_BEHAVIOR_RANDOM), KERN_INVALID_ADDRESS);
	CHECK(79, vm_behavior_set(self, c, 2 * P, VM_BEHAVIOR_PAGEOUT), KERN_INVALID_ARGUMENT);
	CHECK(80, vm_behavior_set(self, c, 0, 12345), KERN_SUCCESS);
	CHECK(81, mach_vm_behavior_set(self, c, 2 * P, VM_BEHAVIOR_FREE), KERN_SUCCESS);
	ENSURE(82, ((volatile unsigned char *)c)[5] == 0x5a); /* contents kept */
	CHECK(83, vm_protect(self, c, P, FALSE, VM_PROT_READ), KERN_SUCCESS);
	CHECK(84, vm_behavior_set(self, c, 2 * P, VM_BEHAVIOR_REUSABLE), KERN_PROTECTION_FAILURE);
	CHECK(85, vm_msync(self, c, 3 * P, VM_SYNC_SYNCHRONOUS), KERN_SUCCESS);
	CHECK(86, vm_msync(self, c, 3 * P, VM_SYNC_SYNCHRONOUS | VM_SYNC_CONTIGUOUS), KERN_INVALID_ADDRESS);
	CHECK(87, mach_vm_msync(self, c, 2 * P, VM_SYNC_SYNCHRONOUS | VM_SYNC_ASYNCHRONOUS), KERN_INVALID_ARGUMENT);
	CHECK(88, vm_msync(mach_host_self(), c, P, 0), KERN_INVALID_TASK);
	CHECK(89, vm_wire(mach_host_self(), self, c, P, VM_PROT_READ), KERN_INVALID_HOST);
	CHECK(90, mach_vm_wire(mach_host_self(), 0x12303, c, P, VM_PROT_READ), MACH_SEND_INVALID_RIGHT);
	CHECK(91, vm_wire(MACH_PORT_NULL, self, c, P, VM_PROT_READ), MACH_SEND_INVALID_DEST);
	CHECK(92, vm_deallocate(self, c, 2 * P), KERN_SUCCESS);

	/* Page queries, task_info, host_statistics64. A fresh page is allocated
	 * but not resident until it is touched; a hole is nothing. */
	vm_address_t d = 0;
	CHECK(93, vm_allocate(self, &d, 2 * P, VM_FLAGS_ANYWHERE), KERN_SUCCESS);
	((volatile unsigned char *)d)[0] = 1;
	integer_t disp = -1, refs = -1;
	CHECK(94, mach_vm_page_query(self, d, &disp, &refs), KERN_SUCCESS);
	ENSURE(95, disp == (VM_PAGE_QUERY_PAGE_PRESENT | VM_PAGE_QUERY_PAGE_REF) && refs == 1);
	CHECK(96, vm_deallocate(self, d + P, P), KERN_SUCCESS);
	ENSURE(97, vm_map_page_query(self, d + P, &disp, &refs) == KERN_SUCCESS &&
		disp == 0 && refs == 0);
	vm_page_info_basic_data_t pinfo;
	cnt = VM_PAGE_INFO_BASIC_COUNT;
	CHECK(98, mach_vm_page_info(self, d + 5, VM_PAGE_INFO_BASIC, (vm_page_info_t)&pinfo, &cnt),
		KERN_SUCCESS);
	ENSURE(99, cnt == VM_PAGE_INFO_BASIC_COUNT && pinfo.offset == 5 && pinfo.ref_count == 1);
	cnt = VM_PAGE_INFO_BASIC_COUNT + 1;
	CHECK(100, mach_vm_page_info(self, d, VM_PAGE_INFO_BASIC, (vm_page_info_t)&pinfo, &cnt),
		KERN_INVALID_ARGUMENT);
	int disps[4] = { -1, -1, -1, -1 };
	mach_vm_size_t ndisp = 4;
	CHECK(101, mach_vm_page_range_query(self, d, 2 * P, (mach_vm_address_t)(vm_address_t)disps,
		&ndisp), KERN_SUCCESS);
	ENSURE(102, ndisp == 2 && (disps[0] & VM_PAGE_QUERY_PAGE_PRESENT) && disps[1] == 0 &&
		disps[2] == -1);
	task_vm_info_data_t vmi;
	cnt = TASK_VM_INFO_COUNT;
	CHECK(103, task_info(self, TASK_VM_INFO, (task_info_t)&vmi, &cnt), KERN_SUCCESS);
	ENSURE(104, cnt == TASK_VM_INFO_COUNT && vmi.page_size == (integer_t)P &&
		vmi.virtual_size >= P && vmi.resident_size >= P &&
		vmi.phys_footprint == vmi.resident_size && vmi.region_count >= 1);
	cnt = TASK_VM_INFO_REV0_COUNT - 1;
	CHECK(105, task_info(self, TASK_VM_INFO, (task_info_t)&vmi, &cnt), KERN_INVALID_ARGUMENT);
	mach_task_basic_info_data_t bi;
	cnt = MACH_TASK_BASIC_INFO_COUNT;
	CHECK(106, task_info(self, MACH_TASK_BASIC_INFO, (task_info_t)&bi, &cnt), KERN_SUCCESS);
	ENSURE(107, bi.policy == POLICY_TIMESHARE && bi.resident_size_max >= bi.resident_size);
	CHECK(108, task_info(mach_host_self(), MACH_TASK_BASIC_INFO, (task_info_t)&bi, &cnt),
		KERN_INVALID_ARGUMENT);
	vm_statistics64_data_t vs;
	cnt = HOST_VM_INFO64_COUNT;
	CHECK(109, host_statistics64(mach_host_self(), HOST_VM_INFO64, (host_info64_t)&vs, &cnt),
		KERN_SUCCESS);
	ENSURE(110, cnt == HOST_VM_INFO64_COUNT && vs.active_count >= 1 &&
		vs.internal_page_count == vs.active_count);
	CHECK(111, host_statistics64(self, HOST_VM_INFO64, (host_info64_t)&vs, &cnt), KERN_INVALID_HOST);
	/* vm_inherit: the page takes it and vm_region reports it; DONATE_COPY is
	 * refused. */
	CHECK(112, vm_inherit(self, d, P, VM_INHERIT_SHARE), KERN_SUCCESS);
	x = d;
	CHECK(113, region(&x, &sz, &info, VM_REGION_BASIC_INFO_64, VM_REGION_BASIC_INFO_COUNT_64), KERN_SUCCESS);
	ENSURE(114, x == d && sz == P && info.inheritance == VM_INHERIT_SHARE);
	CHECK(115, mach_vm_inherit(self, d, P, VM_INHERIT_DONATE_COPY), KERN_INVALID_ARGUMENT);
	/* vm_remap's checks before it looks for a memory that can share: an
	 * inheritance past NONE, a tag in the flags, a hole in the source (before
	 * the target, which is taken: FIXED on d). Nothing is stored. */
	vm_prot_t cur = 77, max = 77;
	x = d;
	CHECK(116, vm_remap(self, &x, P, 0, VM_FLAGS_ANYWHERE, self, d, FALSE, &cur, &max,
		VM_INHERIT_DONATE_COPY), KERN_INVALID_ARGUMENT);
	CHECK(117, vm_remap(self, &x, P, 0, VM_FLAGS_ANYWHERE | VM_MAKE_TAG(1), self, d, FALSE,
		&cur, &max, VM_INHERIT_DEFAULT), KERN_INVALID_ARGUMENT);
	CHECK(118, vm_deallocate(self, d + P, P), KERN_SUCCESS);
	mach_vm_address_t mx = d;
	CHECK(119, mach_vm_remap(self, &mx, 2 * P, 0, VM_FLAGS_FIXED, self, d, TRUE, &cur, &max,
		VM_INHERIT_DEFAULT), KERN_INVALID_ADDRESS);
	ENSURE(120, x == d && mx == d && cur == 77 && max == 77);
	CHECK(121, vm_deallocate(self, d, 2 * P), KERN_SUCCESS);
	/* vm_map of fresh memory: the protections and inheritance asked; a cur
	 * beyond max is refused; an object that is no entry is no object. */
	x = 0;
	CHECK(122, vm_map(self, &x, P, 0, VM_FLAGS_ANYWHERE, MACH_PORT_NULL, 0, FALSE,
		VM_PROT_READ, VM_PROT_DEFAULT, VM_INHERIT_NONE), KERN_SUCCESS);
	vm_address_t y = x;
	CHECK(123, region(&y, &sz, &info, VM_REGION_BASIC_INFO_64, VM_REGION_BASIC_INFO_COUNT_64), KERN_SUCCESS);
	ENSURE(124, y == x && info.protection == VM_PROT_READ &&
		info.max_protection == VM_PROT_DEFAULT && info.inheritance == VM_INHERIT_NONE);
	CHECK(125, vm_map(self, &x, P, 0, VM_FLAGS_ANYWHERE, MACH_PORT_NULL, 0, FALSE,
		VM_PROT_DEFAULT, VM_PROT_READ, VM_INHERIT_DEFAULT), KERN_INVALID_ARGUMENT);
	CHECK(126, vm_map(self, &x, P, 0, VM_FLAGS_ANYWHERE, self, 0, FALSE,
		VM_PROT_READ, VM_PROT_READ, VM_INHERIT_DEFAULT), KERN_INVALID_OBJECT);
	CHECK(127, vm_deallocate(self, x, P), KERN_SUCCESS);
	/* Memory entries: an unknown flag, then port names that cannot go. */
	memory_object_size_t esz = P;
	mem_entry_name_port_t entry = 77;
	CHECK(128, mach_make_memory_entry_64(self, &esz, 0, VM_PROT_READ | 0x100, &entry,
		MACH_PORT_NULL), KERN_INVALID_VALUE);
	ENSURE(129, esz == P && entry == 77);
	CHECK(130, mach_port_deallocate(self, self), KERN_INVALID_RIGHT);
	CHECK(131, mach_port_deallocate(self, 0x777), KERN_INVALID_NAME);
	CHECK(132, mach_port_deallocate(self, MACH_PORT_NULL), KERN_SUCCESS);
	/* vm_region_recurse_64: the submap info of private memory (no submap, no
	 * object id); too short a count is refused. */
	vm_region_submap_info_data_64_t sub;
	natural_t depth = 5;
	mach_msg_type_number_t scnt = VM_REGION_SUBMAP_INFO_COUNT_64;
	y = 0;
	vm_size_t ysz = 0;
	CHECK(133, vm_region_recurse_64(self, &y, &ysz, &depth, (vm_region_recurse_info_t)&sub,
		&scnt), KERN_SUCCESS);
	ENSURE(134, y == 0 && ysz > 0 && depth == 0 && scnt == VM_REGION_SUBMAP_INFO_COUNT_64 &&
		sub.is_submap == 0 && sub.object_id == 0 && sub.protection == VM_PROT_DEFAULT &&
		(sub.share_mode == SM_PRIVATE || sub.share_mode == SM_EMPTY));
	scnt = 11;
	CHECK(135, vm_region_recurse_64(self, &y, &ysz, &depth, (vm_region_recurse_info_t)&sub,
		&scnt), KERN_INVALID_ARGUMENT);
	return 0;
}
