/* Resolves NAME COUNT times through the C library's stub resolver (built twice: static with
 * musl, and with glibc) and reports how many lookups failed or gave another address than
 * EXPECT. Exit 0 only when every lookup succeeded with the expected address. Prints
 * `progress N` every 200 lookups so a test can act while the stream is under way.
 *   edns_resolve NAME COUNT [EXPECT] */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s NAME COUNT [EXPECT]\n", argv[0]);
		return 2;
	}
	long count = strtol(argv[2], NULL, 10);
	const char *expect = argc > 3 ? argv[3] : NULL;
	long ok = 0, fail = 0, mismatch = 0;
	char last[INET_ADDRSTRLEN] = "-";

	for (long i = 0; i < count; i++) {
		struct addrinfo hints, *res = NULL;

		if (i > 0 && i % 200 == 0) {
			printf("progress %ld\n", i);
			fflush(stdout);
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_INET;
		hints.ai_socktype = SOCK_DGRAM;
		if (getaddrinfo(argv[1], NULL, &hints, &res) != 0 || !res) {
			fail++;
			continue;
		}
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, last, sizeof(last));
		freeaddrinfo(res);
		if (expect && strcmp(last, expect) != 0)
			mismatch++;
		else
			ok++;
	}
	printf("ok=%ld fail=%ld mismatch=%ld last=%s\n", ok, fail, mismatch, last);
	return fail == 0 && mismatch == 0 ? 0 : 1;
}
