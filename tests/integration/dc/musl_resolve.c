// A musl-linked resolver client for the data-centre tests: prints the IPv4 addresses that
// getaddrinfo() returns for argv[1], one per line. musl sends A and AAAA queries in parallel
// over UDP and drops replies whose source is not the nameserver it asked, so it proves that
// the eBPF redirect restores the original address on receive.
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct addrinfo hints, *res, *ai;
	char buf[INET_ADDRSTRLEN];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	rc = getaddrinfo(argv[1], NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "getaddrinfo %s: %s\n", argv[1], gai_strerror(rc));
		return 1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET)
			continue;
		struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
		if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)))
			printf("%s\n", buf);
	}
	freeaddrinfo(res);
	return 0;
}
