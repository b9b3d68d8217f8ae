<?php
// Tern's PHP test application: plain PHP, one endpoint per library the extension
// instruments. nginx sends every path here; settings come as FastCGI parameters:
// APP_MYSQL_SOCKET, APP_TARGET_URL (the harness's HTTP server), APP_SELF_URL (nginx),
// APP_SQLITE (a writable file).

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
$target = $_SERVER['APP_TARGET_URL'] ?? 'http://127.0.0.1:1';
$self = $_SERVER['APP_SELF_URL'] ?? 'http://127.0.0.1';

function sqlite_pdo(): PDO {
    $pdo = new PDO('sqlite:' . ($_SERVER['APP_SQLITE'] ?? ':memory:'));
    $pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    $pdo->exec('CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)');
    return $pdo;
}

function mysql_pdo(): PDO {
    $pdo = new PDO('mysql:unix_socket=' . $_SERVER['APP_MYSQL_SOCKET'] . ';dbname=app', 'root', '');
    $pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    return $pdo;
}

function mysqli_conn(): mysqli {
    return new mysqli('localhost', 'root', '', 'app', 0, $_SERVER['APP_MYSQL_SOCKET']);
}

function curl_get(string $url): string {
    $ch = curl_init($url);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    $body = curl_exec($ch);
    curl_close($ch);
    return (string) $body;
}

switch ($path) {
    case '/hello':
        echo 'ok';
        break;

    case '/tern-stats':
        // The extension's own counters in this worker (frames sent and dropped).
        echo json_encode(function_exists('tern_stats') ? tern_stats() : null);
        break;

    case '/pdo-sqlite':
        $pdo = sqlite_pdo();
        $pdo->exec("INSERT INTO items (name) VALUES ('apple')");
        $st = $pdo->prepare('SELECT id, name FROM items WHERE name = ?');
        $st->execute(['apple']);
        $rows = $st->fetchAll();
        $n = $pdo->query('SELECT COUNT(*) FROM items')->fetchColumn();
        echo "sqlite rows=$n";
        break;

    case '/read':
        // Read-only: hooked calls without disk writes (the memory test's endpoint).
        $pdo = sqlite_pdo();
        $st = $pdo->prepare('SELECT COUNT(*) FROM items WHERE name = ?');
        $st->execute(['apple']);
        $n = $st->fetchColumn();
        $pdo->query('SELECT 1')->fetchAll();
        echo "read $n " . curl_get("$target/read");
        break;

    case '/pdo-mysql':
        $pdo = mysql_pdo();
        $pdo->exec('CREATE TABLE IF NOT EXISTS orders (id INT AUTO_INCREMENT PRIMARY KEY, total INT)');
        $pdo->exec('INSERT INTO orders (total) VALUES (42)');
        $st = $pdo->prepare('SELECT id, total FROM orders WHERE total = ?');
        $st->execute([42]);
        $n = count($st->fetchAll());
        echo "mysql rows=$n";
        break;

    case '/mysqli':
        // Procedural style.
        $link = mysqli_connect('localhost', 'root', '', 'app', 0, $_SERVER['APP_MYSQL_SOCKET']);
        mysqli_query($link, 'CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(32))');
        mysqli_query($link, "INSERT INTO users (name) VALUES ('ada')");
        $r = mysqli_query($link, 'SELECT COUNT(*) AS n FROM users');
        $proc = mysqli_fetch_assoc($r)['n'];
        mysqli_close($link);
        // Object style.
        $m = mysqli_conn();
        $res = $m->query("SELECT name FROM users WHERE name = 'ada' LIMIT 1");
        $oo = $res->fetch_assoc()['name'];
        $m->close();
        echo "mysqli $proc $oo";
        break;

    case '/curl':
        echo 'curl ' . curl_get("$target/one");
        break;

    case '/curl-multi':
        $mh = curl_multi_init();
        $handles = [];
        foreach (['/multi-a', '/multi-b'] as $p) {
            $ch = curl_init("$target$p");
            curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
            curl_multi_add_handle($mh, $ch);
            $handles[] = $ch;
        }
        do {
            $status = curl_multi_exec($mh, $running);
            if ($running) {
                curl_multi_select($mh, 1.0);
            }
        } while ($running && $status == CURLM_OK);
        $out = [];
        foreach ($handles as $ch) {
            $out[] = curl_multi_getcontent($ch);
            curl_multi_remove_handle($mh, $ch);
        }
        curl_multi_close($mh);
        echo 'multi ' . implode(',', $out);
        break;

    case '/stream':
        echo 'stream ' . file_get_contents("$target/stream");
        break;

    case '/chain':
        // Calls another instrumented endpoint of this app: one trace across both.
        echo 'chain ' . curl_get("$self/downstream");
        break;

    case '/downstream':
        $pdo = sqlite_pdo();
        $pdo->query('SELECT COUNT(*) FROM items')->fetchColumn();
        echo $_SERVER['HTTP_TRACEPARENT'] ?? 'no-traceparent';
        break;

    case '/throw':
        throw new RuntimeException('the order was not found');

    case '/fatal':
        ini_set('memory_limit', '16M');
        $blocks = [];
        while (true) {
            $blocks[] = str_repeat('x', 1 << 20);
        }

    case '/exit':
        echo 'bye';
        exit(0);

    case '/slow':
        // Holds a SQL call (MariaDB) or an external call for a while, so the active
        // view can see it running.
        $secs = (int) ($_GET['s'] ?? 3);
        if (($_GET['kind'] ?? 'sql') === 'http') {
            curl_get("$target/sleep?ms=" . ($secs * 1000));
        } else {
            mysql_pdo()->query("SELECT SLEEP($secs)")->fetchAll();
        }
        echo 'slow done';
        break;

    case '/bench':
        // About 20 calls: 16 SQL on MariaDB (PDO and mysqli), 4 HTTP calls.
        $pdo = mysql_pdo();
        $pdo->exec('CREATE TABLE IF NOT EXISTS bench (id INT PRIMARY KEY, v INT)');
        $pdo->exec('INSERT IGNORE INTO bench VALUES (1, 1), (2, 2), (3, 3)');
        $st = $pdo->prepare('SELECT v FROM bench WHERE id = ?');
        $sum = 0;
        for ($i = 0; $i < 8; $i++) {
            $st->execute([1 + $i % 3]);
            $sum += (int) $st->fetchColumn();
        }
        $m = mysqli_conn();
        for ($i = 0; $i < 6; $i++) {
            $r = $m->query('SELECT v FROM bench WHERE id = ' . (1 + $i % 3));
            $sum += (int) $r->fetch_row()[0];
        }
        $m->close();
        for ($i = 0; $i < 4; $i++) {
            $sum += strlen(curl_get("$target/bench"));
        }
        echo "bench $sum peak=" . memory_get_peak_usage();
        break;

    default:
        http_response_code(404);
        echo 'not found';
}
