package lake.spark;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.spark.internal.io.FileCommitProtocol;
import org.apache.spark.internal.io.FileNameSpec;
import org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils;
import scala.Option;
import scala.collection.Seq;

/**
 * Spark's commit protocol for the lake's publish (lib/jobs/publish.py): every task writes
 * its files once, straight under their final names in the zone, and nothing is renamed.
 *
 * <p>The write is partitioned by the upload first ({@code pub_upload=<id>/k=v/...}); that
 * level is not a folder of the zone but the start of the file's name:
 * {@code <zone>/k=v/.../<upload>_<run>_<task>.c<n>.snappy.parquet}. So one file holds the
 * rows of one upload, written by one run, and a name is the same in every attempt of a
 * task (a retried task overwrites what the failed attempt wrote). The run id comes from the
 * write's option {@code lake.publish.run_id}.
 *
 * <p>There is no job commit: the run's journal is the commit (which files make up an
 * upload's published state, which older ones to delete). A task that fails deletes the
 * files it wrote; a run that fails deletes the files of its uploads and run id.
 */
public class UploadFilesCommitProtocol extends FileCommitProtocol implements java.io.Serializable {
    public static final String RUN_ID = "lake.publish.run_id";
    public static final String UPLOAD_KEY = "pub_upload";

    private final String path;
    private transient List<Path> written;

    public UploadFilesCommitProtocol(String jobId, String path, boolean dynamicPartitionOverwrite) {
        if (dynamicPartitionOverwrite) {
            throw new IllegalArgumentException(
                "UploadFilesCommitProtocol adds files; a dynamic partition overwrite is not one");
        }
        this.path = path;
    }

    @Override
    public void setupJob(JobContext job) {
    }

    @Override
    public void commitJob(JobContext job, Seq<FileCommitProtocol.TaskCommitMessage> messages) {
    }

    @Override
    public void abortJob(JobContext job) {
    }

    @Override
    public void setupTask(TaskAttemptContext task) {
        written = new ArrayList<>();
    }

    @Override
    public String newTaskTempFile(TaskAttemptContext task, Option<String> dir, String ext) {
        return newTaskTempFile(task, dir, new FileNameSpec("", ext));
    }

    @Override
    public String newTaskTempFile(TaskAttemptContext task, Option<String> dir, FileNameSpec spec) {
        String runId = task.getConfiguration().get(RUN_ID, "");
        if (runId.isEmpty()) {
            throw new IllegalStateException("the write has no " + RUN_ID + " option");
        }
        String partition = dir.isDefined() ? dir.get() : "";
        int slash = partition.indexOf('/');
        String first = slash < 0 ? partition : partition.substring(0, slash);
        if (!first.startsWith(UPLOAD_KEY + "=")) {
            throw new IllegalStateException(
                "the write is not partitioned by " + UPLOAD_KEY + " first: '" + partition + "'");
        }
        String upload = ExternalCatalogUtils.unescapePathName(first.substring(UPLOAD_KEY.length() + 1));
        int split = task.getTaskAttemptID().getTaskID().getId();
        String name = String.format("%s_%s_%05d%s", upload, runId, split, spec.suffix());
        Path parent = slash < 0 ? new Path(path) : new Path(path, partition.substring(slash + 1));
        Path file = new Path(parent, spec.prefix() + name);
        written.add(file);
        return file.toString();
    }

    @Override
    public String newTaskTempFileAbsPath(TaskAttemptContext task, String absoluteDir, String ext) {
        throw new UnsupportedOperationException("the lake writes no custom partition locations");
    }

    @Override
    public FileCommitProtocol.TaskCommitMessage commitTask(TaskAttemptContext task) {
        return new FileCommitProtocol.TaskCommitMessage(written.size());
    }

    @Override
    public void abortTask(TaskAttemptContext task) {
        for (Path file : written) {
            try {
                file.getFileSystem(task.getConfiguration()).delete(file, false);
            } catch (IOException e) {
                // the run deletes every file of its uploads and run id when it fails
            }
        }
    }
}
