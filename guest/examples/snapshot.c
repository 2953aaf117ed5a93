/*
 * snapshot: take a snapshot of a working region with vm_copy, let the
 * program keep mutating the original, find the pages that changed since the
 * snapshot, and roll back only those pages (page-wise vm_copy), the way a
 * checkpoint/undo log or a copy-on-demand restore works. The snapshot is
 * frozen read-only with vm_protect so that nothing can scribble on it.
 *
 * Exports (i32 results):
 *   snapshot_selftest()  0 on success, else the failing step (1..20): the
 *                        FAIL_* codes below.
 *   snapshot_dirty_pages() runs the same scenario up to the diff and returns
 *                        the number of pages found changed since the
 *                        snapshot: 3 (the mutation covers parts of pages
 *                        0, 1 and 2 of the 4-page region), or -(FAIL_*).
 *   last_kr()            kern_return_t of the last failed call (0 if none).
 */
#include <mach/mach.h>

#define REGION_PAGES 4

enum {
	FAIL_PAGE_SIZE = 1,      /* host_page_size failed */
	FAIL_ALLOC_ORIG = 2,     /* vm_allocate of the working region failed */
	FAIL_ALLOC_SNAP = 3,     /* mach_vm_allocate of the snapshot failed */
	FAIL_SNAPSHOT = 4,       /* vm_copy(original -> snapshot) failed */
	FAIL_SNAP_CONTENT = 5,   /* the snapshot does not hold the original data */
	FAIL_FREEZE = 6,         /* vm_protect(snapshot, READ) failed */
	FAIL_SNAP_REGION = 7,    /* mach_vm_region: snapshot not one READ/ALL region */
	FAIL_COPY_INTO_SNAP = 8, /* vm_copy into the frozen snapshot: not PROTECTION_FAILURE */
	FAIL_SNAP_CHANGED = 9,   /* the failed copy changed the snapshot (not all-or-nothing) */
	FAIL_DIRTY_COUNT = 10,   /* not exactly pages 0..2 changed */
	FAIL_RESTORE = 11,       /* vm_copy(snapshot page -> original page) failed */
	FAIL_RESTORED = 12,      /* the original differs from the snapshot after the restore */
	FAIL_VM_READ = 13,       /* vm_read of the snapshot failed */
	FAIL_VM_READ_DATA = 14,  /* vm_read: wrong count, unaligned or wrong bytes */
	FAIL_MEMMOVE = 15,       /* overlapping unaligned vm_copy failed or is not a memmove */
	FAIL_READ_OVERWRITE = 16,/* mach_vm_read_overwrite(snapshot -> original) failed */
	FAIL_WRITE = 17,         /* mach_vm_write(buffer -> original) failed or wrong */
	FAIL_DEALLOC = 18,       /* a vm_deallocate / mach_vm_deallocate failed */
	FAIL_GONE = 19,          /* vm_copy from the freed snapshot: not INVALID_ADDRESS */
	FAIL_UNFREEZE = 20,      /* vm_protect(snapshot, RW) failed */
};

static kern_return_t g_last_kr;

kern_return_t last_kr(void) { return g_last_kr; }

static int failed(kern_return_t kr)
{
	if (kr != KERN_SUCCESS) {
		g_last_kr = kr;
		return 1;
	}
	return 0;
}

static void fill(unsigned char *p, vm_size_t n, unsigned int seed)
{
	for (vm_size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

static int same(const unsigned char *a, const unsigned char *b, vm_size_t n)
{
	for (vm_size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return 0;
	}
	return 1;
}

struct scenario {
	vm_size_t page, size;
	unsigned char *orig;      /* the working region */
	mach_vm_address_t snap;   /* the snapshot (allocated with the 64-bit call) */
	int dirty[REGION_PAGES];
	int ndirty;
};

/* Steps shared by both exports: snapshot, mutate, freeze, diff. */
static int prepare(struct scenario *s)
{
	vm_address_t a = 0;
	task_t self = mach_task_self();

	if (failed(host_page_size(mach_host_self(), &s->page)))
		return FAIL_PAGE_SIZE;
	s->size = REGION_PAGES * s->page;
	if (failed(vm_allocate(self, &a, s->size, VM_FLAGS_ANYWHERE)))
		return FAIL_ALLOC_ORIG;
	s->orig = (unsigned char *)a;
	s->snap = 0;
	if (failed(mach_vm_allocate(self, &s->snap, s->size, VM_FLAGS_ANYWHERE)))
		return FAIL_ALLOC_SNAP;
	unsigned char *snap = (unsigned char *)(vm_address_t)s->snap;

	fill(s->orig, s->size, 1);
	if (failed(vm_copy(self, (vm_address_t)s->orig, s->size, (vm_address_t)s->snap)))
		return FAIL_SNAPSHOT;
	if (!same(s->orig, snap, s->size))
		return FAIL_SNAP_CONTENT;

	/* Freeze: the snapshot becomes read-only (its maximum stays ALL). */
	if (failed(vm_protect(self, (vm_address_t)s->snap, s->size, FALSE, VM_PROT_READ)))
		return FAIL_FREEZE;
	mach_vm_address_t ra = s->snap;
	mach_vm_size_t rs = 0;
	vm_region_basic_info_data_64_t info;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t object_name;
	if (failed(mach_vm_region(self, &ra, &rs, VM_REGION_BASIC_INFO_64,
		    (vm_region_info_t)&info, &count, &object_name)) ||
	    ra != s->snap || rs < s->size || info.protection != VM_PROT_READ ||
	    info.max_protection != VM_PROT_ALL)
		return FAIL_SNAP_REGION;

	/* The program goes on: it mutates bytes in pages 0, 1 and 2. */
	fill(s->orig + s->page / 2, 2 * s->page, 2);

	/* A copy into the frozen snapshot is refused and changes nothing. */
	if (vm_copy(self, (vm_address_t)s->orig, s->size, (vm_address_t)s->snap) !=
	    KERN_PROTECTION_FAILURE)
		return FAIL_COPY_INTO_SNAP;
	{
		/* The snapshot still holds the data as it was at the snapshot. */
		unsigned int seed = 1;
		for (vm_size_t i = 0; i < s->size; i++) {
			seed = seed * 1103515245u + 12345u;
			if (snap[i] != (unsigned char)(seed >> 16))
				return FAIL_SNAP_CHANGED;
		}
	}

	/* Diff: which pages differ from the snapshot? */
	s->ndirty = 0;
	for (int p = 0; p < REGION_PAGES; p++) {
		s->dirty[p] = !same(s->orig + p * s->page, snap + p * s->page, s->page);
		s->ndirty += s->dirty[p];
	}
	return 0;
}

int snapshot_dirty_pages(void)
{
	struct scenario s;
	int rc = prepare(&s);
	return rc ? -rc : s.ndirty;
}

int snapshot_selftest(void)
{
	struct scenario s;
	task_t self = mach_task_self();
	int rc = prepare(&s);
	if (rc)
		return rc;
	unsigned char *snap = (unsigned char *)(vm_address_t)s.snap;

	if (s.ndirty != 3 || !s.dirty[0] || !s.dirty[1] || !s.dirty[2] || s.dirty[3])
		return FAIL_DIRTY_COUNT;

	/* Roll back only the dirty pages. */
	for (int p = 0; p < REGION_PAGES; p++) {
		if (s.dirty[p] &&
		    failed(vm_copy(self, (vm_address_t)snap + p * s.page, s.page,
			(vm_address_t)s.orig + p * s.page)))
			return FAIL_RESTORE;
	}
	if (!same(s.orig, snap, s.size))
		return FAIL_RESTORED;

	/* vm_read hands back a private copy that we own, at the source's offset
	 * within its page (0: the snapshot is page-aligned). */
	vm_offset_t buf = 0;
	mach_msg_type_number_t cnt = 0;
	if (failed(vm_read(self, (vm_address_t)s.snap, s.size, &buf, &cnt)))
		return FAIL_VM_READ;
	if (cnt != s.size || (buf & (s.page - 1)) != 0 || !same((unsigned char *)buf, snap, s.size))
		return FAIL_VM_READ_DATA;

	/* vm_copy is a memmove: overlapping, unaligned ranges are fine. Do the
	 * same move by hand on the private copy and compare. */
	vm_size_t src_off = 5, dst_off = 5 + s.page / 3, len = 2 * s.page + 7;
	if (failed(vm_copy(self, (vm_address_t)s.orig + src_off, len, (vm_address_t)s.orig + dst_off)))
		return FAIL_MEMMOVE;
	__builtin_memmove((unsigned char *)buf + dst_off, (unsigned char *)buf + src_off, len);
	if (!same(s.orig, (unsigned char *)buf, s.size))
		return FAIL_MEMMOVE;

	/* Restore everything in one call with the 64-bit read_overwrite. */
	mach_vm_size_t out = 0;
	if (failed(mach_vm_read_overwrite(self, s.snap, s.size, (mach_vm_address_t)(vm_address_t)s.orig, &out)) ||
	    out != s.size || !same(s.orig, snap, s.size))
		return FAIL_READ_OVERWRITE;

	/* mach_vm_write: put a patch from our buffer into page 3. */
	fill((unsigned char *)buf, 100, 3);
	if (failed(mach_vm_write(self, (mach_vm_address_t)(vm_address_t)s.orig + 3 * s.page + 1, buf, 100)) ||
	    !same(s.orig + 3 * s.page + 1, (unsigned char *)buf, 100) || s.orig[3 * s.page] != snap[3 * s.page])
		return FAIL_WRITE;

	/* Thaw and free everything. */
	if (failed(vm_protect(self, (vm_address_t)s.snap, s.size, FALSE, VM_PROT_DEFAULT)))
		return FAIL_UNFREEZE;
	if (failed(vm_deallocate(self, buf, s.size)) ||
	    failed(mach_vm_deallocate(self, s.snap, s.size)) ||
	    failed(vm_deallocate(self, (vm_address_t)s.orig, s.size)))
		return FAIL_DEALLOC;
	if (vm_copy(self, (vm_address_t)s.snap, 16, (vm_address_t)s.orig) != KERN_INVALID_ADDRESS)
		return FAIL_GONE;
	return 0;
}
