/* A Kafka broker for the benchmark: librdkafka's mock cluster (rdkafka_mock.h) in its own
 * process, so the bridge and the Python receiver produce to the same brokers over loopback.
 * Prints the bootstrap servers on one line, then runs until SIGTERM or SIGINT. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    const char *topic = argc > 1 ? argv[1] : "webhooks";
    int partitions = argc > 2 ? atoi(argv[2]) : 6;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!host) { fprintf(stderr, "rd_kafka_new: %s\n", err); return 1; }
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(host, 3);
    if (!cluster) { fprintf(stderr, "mock cluster failed\n"); return 1; }
    if (rd_kafka_mock_topic_create(cluster, topic, partitions, 3)) {
        fprintf(stderr, "cannot create topic %s\n", topic);
        return 1;
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) pause();
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(host);
    return 0;
}
