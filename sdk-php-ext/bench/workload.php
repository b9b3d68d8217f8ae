<?php
// One measurement: N iterations of each case in this process. Prints
// "case cpu_ns_per_iteration wall_ns_per_iteration" lines (CPU time from getrusage: on a
// shared, loaded machine wall time mostly measures the scheduler). Run by run.sh with and
// without the extension.
$n = (int) ($argv[1] ?? 200000);

function leaf(int $i): int { return $i + 1; }

function cpu_ns(): int {
    $u = getrusage();
    return ($u['ru_utime.tv_sec'] + $u['ru_stime.tv_sec']) * 1000000000
        + ($u['ru_utime.tv_usec'] + $u['ru_stime.tv_usec']) * 1000;
}

$pdo = new PDO('sqlite::memory:');
$pdo->exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
$pdo->exec("INSERT INTO t VALUES (1, 'one')");
$stmt = $pdo->prepare('SELECT v FROM t WHERE id = ?');

$cases = [
    'pdo_query' => function () use ($pdo, $n) {
        for ($i = 0; $i < $n; $i++) { $pdo->query('SELECT v FROM t WHERE id = 1'); }
    },
    'pdo_prepared_execute' => function () use ($stmt, $n) {
        for ($i = 0; $i < $n; $i++) { $stmt->execute([1]); }
    },
    'user_call' => function () use ($n) {
        $x = 0;
        for ($i = 0; $i < $n; $i++) { $x = leaf($x); }
    },
    'empty_loop' => function () use ($n) {
        for ($i = 0; $i < $n; $i++) { }
    },
];
foreach ($cases as $name => $run) {
    $run(); // warm up
    $best = $bestWall = PHP_INT_MAX;
    for ($round = 0; $round < 3; $round++) {
        $c = cpu_ns();
        $t = hrtime(true);
        $run();
        $bestWall = min($bestWall, hrtime(true) - $t);
        $best = min($best, cpu_ns() - $c);
    }
    printf("%s %.1f %.1f\n", $name, $best / $n, $bestWall / $n);
}
