// SPDX-License-Identifier: Apache-2.0
/* The C side of `sluice bench maps` (mode c-libbpf): the same map, the same sequence of work
 * as src/bench/scenarios/maps.ts does through the TypeScript binding, so the two rates compare
 * the binding's overhead and nothing else.
 *
 * usage: map_bench OBJECT MAP ENTRIES
 * prints one JSON object: {"update_rate":..,"batch_update_rate":..,"lookup_ns":..}
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_SIZE 16
#define VALUE_SIZE 32
#define BATCH_CHUNK 4096 /* same chunk as the TypeScript side */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Key i: same bytes as the TypeScript side writes (id, addr, port, proto, pad). */
static void fill_key(uint8_t *k, uint32_t i)
{
	uint64_t id = i;
	uint32_t addr = 0xc6120000u + i;
	uint16_t port = (uint16_t)i;

	memset(k, 0, KEY_SIZE);
	memcpy(k, &id, 8);
	memcpy(k + 8, &addr, 4);
	memcpy(k + 12, &port, 2);
	k[14] = 6;
}

static void fill_value(uint8_t *v, uint32_t i)
{
	uint64_t w = i;

	memset(v, 0, VALUE_SIZE);
	memcpy(v, &w, 8);
}

static int die(const char *call, int err)
{
	fprintf(stderr, "%s: %s\n", call, strerror(err < 0 ? -err : err));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s OBJECT MAP ENTRIES\n", argv[0]);
		return 2;
	}
	uint32_t n = strtoul(argv[3], NULL, 10);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return die("bpf_object__open_file", errno);
	struct bpf_map *map = bpf_object__find_map_by_name(obj, argv[2]);
	if (!map)
		return die("bpf_object__find_map_by_name", ENOENT);
	bpf_map__set_max_entries(map, n);
	int err = bpf_object__load(obj);
	if (err)
		return die("bpf_object__load", err);
	int fd = bpf_map__fd(map);

	uint8_t *keys = calloc(n, KEY_SIZE), *values = calloc(n, VALUE_SIZE);
	uint8_t out[VALUE_SIZE];
	for (uint32_t i = 0; i < n; i++) {
		fill_key(keys + (size_t)i * KEY_SIZE, i);
		fill_value(values + (size_t)i * VALUE_SIZE, i);
	}

	/* 1. single updates, building keys as we go (as a control plane does) */
	uint8_t key[KEY_SIZE], value[VALUE_SIZE];
	double t0 = now_s();
	for (uint32_t i = 0; i < n; i++) {
		fill_key(key, i);
		fill_value(value, i);
		err = bpf_map_update_elem(fd, key, value, BPF_ANY);
		if (err)
			return die("bpf_map_update_elem", err);
	}
	double update_s = now_s() - t0;

	/* 2. lookups of every key */
	t0 = now_s();
	for (uint32_t i = 0; i < n; i++) {
		fill_key(key, i);
		err = bpf_map_lookup_elem(fd, key, out);
		if (err)
			return die("bpf_map_lookup_elem", err);
	}
	double lookup_s = now_s() - t0;

	/* 3. empty the map, then batched inserts of prebuilt arrays */
	for (uint32_t done = 0; done < n;) {
		uint32_t count = n - done < BATCH_CHUNK ? n - done : BATCH_CHUNK;
		err = bpf_map_delete_batch(fd, keys + (size_t)done * KEY_SIZE, &count, NULL);
		if (err)
			return die("bpf_map_delete_batch", err);
		done += count;
	}
	t0 = now_s();
	for (uint32_t done = 0; done < n;) {
		uint32_t count = n - done < BATCH_CHUNK ? n - done : BATCH_CHUNK;
		err = bpf_map_update_batch(fd, keys + (size_t)done * KEY_SIZE,
					   values + (size_t)done * VALUE_SIZE, &count, NULL);
		if (err)
			return die("bpf_map_update_batch", err);
		done += count;
	}
	double batch_s = now_s() - t0;

	printf("{\"update_rate\":%.0f,\"batch_update_rate\":%.0f,\"lookup_ns\":%.1f}\n",
	       n / update_s, n / batch_s, lookup_s * 1e9 / n);
	bpf_object__close(obj);
	free(keys);
	free(values);
	return 0;
}
