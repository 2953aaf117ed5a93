/*
 * purgecache: a cache in purgeable memory, kept as macOS code keeps one
 * (NSPurgeableData, libcache): while it is not in use the cache is volatile,
 * so memory pressure can take its pages back by emptying it instead of making
 * anything fail; before each use it is made nonvolatile, and when the old
 * state says it was emptied, its contents are computed again.
 *
 * The contents: a table of `pages` pages of 32-bit words, word i = f(i), which
 * stands for something worth caching. Built for wasm32 (purgecache.wasm) and
 * wasm64 (purgecache64.wasm).
 *
 * Exports (i32 unless said):
 *   cache_init(pages)   allocates the cache with VM_FLAGS_PURGABLE, fills it
 *                       and makes it volatile: 0, or the failing step.
 *   cache_sum()         i64: the sum of the table's words (the same every
 *                       time), or -(failing step); refills it first when it
 *                       was emptied, and leaves it volatile again.
 *   cache_refills()     how many times the table was computed.
 *   cache_state()       the purgeable state now (VM_PURGABLE_*), or -1.
 *   cache_selftest()    0 when the whole story holds, with its own pressure
 *                       (VM_PURGABLE_PURGE_ALL): else the failing step.
 *   last_kr()           the kern_return_t of the last call that failed.
 */
#include <mach/mach.h>

static kern_return_t g_last_kr;
static vm_address_t g_cache;
static vm_size_t g_words;
static int g_refills;

kern_return_t last_kr(void) { return g_last_kr; }
int cache_refills(void) { return g_refills; }

static unsigned int word(vm_size_t i)
{
	return (unsigned int)(i * 2654435761u) ^ (unsigned int)(i >> 3);
}

static void fill(void)
{
	volatile unsigned int *w = (volatile unsigned int *)g_cache;
	for (vm_size_t i = 0; i < g_words; i++)
		w[i] = word(i);
	g_refills++;
}

/* Sets the cache's state; the old state in *old. */
static int set_state(int state, int *old)
{
	int s = state;
	kern_return_t kr = vm_purgable_control(mach_task_self(), g_cache,
		VM_PURGABLE_SET_STATE, &s);
	if (kr != KERN_SUCCESS) {
		g_last_kr = kr;
		return 0;
	}
	*old = s;
	return 1;
}

int cache_state(void)
{
	int s = 0;
	kern_return_t kr = vm_purgable_control(mach_task_self(), g_cache,
		VM_PURGABLE_GET_STATE, &s);
	if (kr != KERN_SUCCESS) {
		g_last_kr = kr;
		return -1;
	}
	return s;
}

int cache_init(int pages)
{
	vm_address_t a = 0;
	vm_size_t size = (vm_size_t)pages * vm_page_size;
	kern_return_t kr = vm_allocate(mach_task_self(), &a, size,
		VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE);
	if (kr != KERN_SUCCESS) {
		g_last_kr = kr;
		return 1;
	}
	g_cache = a;
	g_words = size / sizeof(unsigned int);
	g_refills = 0;
	fill();
	int old;
	if (!set_state(VM_PURGABLE_VOLATILE, &old))
		return 2;
	return old == VM_PURGABLE_NONVOLATILE ? 0 : 3;
}

long long cache_sum(void)
{
	int old;
	if (!set_state(VM_PURGABLE_NONVOLATILE, &old))
		return -4;
	if (old == VM_PURGABLE_EMPTY)
		fill(); /* emptied under pressure: compute it again */
	else if (old != VM_PURGABLE_VOLATILE)
		return -5;
	long long sum = 0;
	volatile unsigned int *w = (volatile unsigned int *)g_cache;
	for (vm_size_t i = 0; i < g_words; i++)
		sum += w[i];
	if (!set_state(VM_PURGABLE_VOLATILE, &old))
		return -6;
	return sum;
}

int cache_selftest(void)
{
	if (cache_init(3) != 0)
		return 10;
	long long first = cache_sum();
	if (first < 0 || g_refills != 1)
		return 11;
	/* No pressure: the cache was kept. */
	if (cache_sum() != first || g_refills != 1)
		return 12;
	/* Pressure: every volatile object is emptied; its pages read as zero. */
	int state = 0;
	kern_return_t kr = vm_purgable_control(mach_task_self(), g_cache,
		VM_PURGABLE_PURGE_ALL, &state);
	if (kr != KERN_SUCCESS) {
		g_last_kr = kr;
		return 13;
	}
	if (cache_state() != VM_PURGABLE_EMPTY || ((volatile unsigned int *)g_cache)[1] != 0)
		return 14;
	/* Emptied, not failed: the next use computes it again. */
	if (cache_sum() != first || g_refills != 2)
		return 15;
	/* Memory that is not purgeable is refused. */
	vm_address_t plain = 0;
	if (vm_allocate(mach_task_self(), &plain, vm_page_size, VM_FLAGS_ANYWHERE) != KERN_SUCCESS)
		return 16;
	state = VM_PURGABLE_VOLATILE;
	kr = vm_purgable_control(mach_task_self(), plain, VM_PURGABLE_SET_STATE, &state);
	if (kr != KERN_INVALID_ARGUMENT)
		return 17;
	if (vm_deallocate(mach_task_self(), plain, vm_page_size) != KERN_SUCCESS)
		return 18;
	return 0;
}
