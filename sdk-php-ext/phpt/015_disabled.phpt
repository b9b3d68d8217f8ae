--TEST--
with tern.enabled=0 nothing is recorded or sent and hooked functions behave as without the extension
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$r = tern_run('<?php $pdo = new PDO("sqlite::memory:"); $s = tern_stats(); ksort($s); echo $pdo->query("SELECT 7")->fetchColumn(), " ", json_encode($s), "\n";', ['tern.enabled' => '0']);
echo $r['out'];
echo count($r['spans']), " spans\n";
?>
--EXPECT--
7 {"curl_info_from_php":0,"enabled":0,"frames_dropped":0,"frames_dropped_full":0,"frames_sent":0,"frames_sent_shared":0,"hook_failures":0,"hooks_installed":0,"overhead_ns_hooks":0,"overhead_ns_request_end":0,"overhead_ns_request_start":0,"overhead_ns_send":0,"params_dropped":0}
0 spans
