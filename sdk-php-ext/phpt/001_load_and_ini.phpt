--TEST--
the extension loads, and invalid INI values give a startup warning naming the setting and a safe default
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
var_dump(extension_loaded('tern'));
$cmd = tern_php_cmd([
    'tern.max_nodes' => '3',
    'tern.endpoint_naming' => 'bogus',
    'tern.profile_sample' => '7',
    'tern.enabled' => 'maybe',
    'tern.socket' => 'relative.sock',
    'tern.active_path' => tern_tmp('active'),
]);
$cmd[] = '-r';
$cmd[] = 'echo "php still runs\n"; var_dump(tern_stats()["enabled"]);';
$proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
$out = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
echo "exit ", proc_close($proc), "\n";
foreach (['tern.max_nodes', 'tern.endpoint_naming', 'tern.profile_sample', 'tern.enabled', 'tern.socket'] as $name) {
    echo $name, ": ", preg_match('/Warning: +tern: invalid ' . preg_quote($name) . ' value/', $out) ? 'warned' : 'NOT WARNED', "\n";
}
echo str_contains($out, 'php still runs') ? "runs\n" : "BROKEN: $out\n";
echo str_contains($out, 'int(1)') ? "enabled falls back to 1\n" : "enabled wrong\n";
?>
--EXPECT--
bool(true)
exit 0
tern.max_nodes: warned
tern.endpoint_naming: warned
tern.profile_sample: warned
tern.enabled: warned
tern.socket: warned
runs
enabled falls back to 1
